"""Tokenizers: loaded from a model source, or a small BPE trained in-process (debug preset).

The trained tokenizer splits digits one by one (so arithmetic is learnable by a tiny model) and
carries the default chat template's role markers as atomic special tokens.
"""

from __future__ import annotations

from trainers.lm.chat import TEMPLATE_TOKENS, ensure_chat_template

SPECIALS = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}


def train_tokenizer(texts: list[str], *, vocab_size: int):
    """A byte-level BPE over `texts` with digits kept apart, wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=SPECIALS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    specials = list(SPECIALS.values()) + TEMPLATE_TOKENS
    # The full byte alphabet keeps every input representable (newlines of the template too).
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIALS)
    wrapped.add_special_tokens({"additional_special_tokens": TEMPLATE_TOKENS})
    ensure_chat_template(wrapped)
    return wrapped


def load_tokenizer(source: str):
    """A tokenizer from an HF id or a local directory (gs:// sources are downloaded first)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    ensure_chat_template(tokenizer)
    return tokenizer


def corpus_texts(records: list[dict]) -> list[str]:
    """The strings a tokenizer should learn from instruction records."""
    texts = []
    for record in records:
        if "messages" in record:
            texts.extend(m["content"] for m in record["messages"])
        else:
            texts.extend((record["prompt"], record["response"]))
    return texts
