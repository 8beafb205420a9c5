"""The prediction server: a causal LM behind the Vertex AI custom-container HTTP contract.

    python -m serving --model outputs/demo/model     # then POST {"instances": [...]} to /predict

`serving.predictor` turns instances into completions, `serving.server` is the FastAPI app
(routes and port from the AIP_* variables Vertex sets), `serving.local` runs the server as a
child process for the local pipeline target and `liftoff serve`.
"""
