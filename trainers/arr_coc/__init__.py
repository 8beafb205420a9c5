"""ARR-COC: a Qwen3-VL whose language model sees only the visual tokens that matter for the
question, under a token budget (texture, three ways of knowing, a balancer, an allocator, and a
gradient path through the hard top-K). See `trainers.arr_coc.model` for the forward pass,
`trainers.arr_coc.stages` for the three training stages and `python -m trainers.arr_coc.probe`
for a rough CPU training run on the debug scenes."""
