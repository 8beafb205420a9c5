"""ARR-COC: a Qwen3-VL whose language model sees only the visual tokens that matter for the
question, under a token budget (texture, three ways of knowing, a balancer, an allocator, and a
gradient path through the hard top-K). See `trainers.arr_coc.model` for the forward pass,
`trainers.arr_coc.stages` for the three training stages, `python -m trainers.arr_coc` for the
trainer (one stage a run, on the one loop), `trainers.arr_coc.saved` for a trained model's
directory and `trainers.arr_coc.evaluate` for accuracy against the budget."""
