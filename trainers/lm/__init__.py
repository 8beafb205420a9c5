"""The language-model layer every trainer shares: chat templates, tokenizers, model build/load/
LoRA, token loss and generation. Trainers stand on it and never import each other."""
