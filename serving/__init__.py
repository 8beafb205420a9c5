"""The prediction server: a trained LM or VLM behind the Vertex AI custom-container contract.

    python -m serving --model outputs/demo/model     # then POST {"instances": [...]} to /predict

`serving.contract` is the Vertex contract (port, routes, env names); `serving.predictor` the
predictor protocol and loader over `serving.text` (language models) and `serving.vision`
(VLMs, images read by `serving.images`); `serving.params` and `serving.limits` validate and
bound every request; `serving.batching` gathers concurrent requests into batches;
`serving.server` is the FastAPI app and `serving.errors` its one JSON error shape;
`serving.local` runs the server as a child process (the local deploy step, `liftoff serve`);
`serving.registry` is the local model registry.
"""
