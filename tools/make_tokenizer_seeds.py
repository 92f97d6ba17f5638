"""Writes small real-ish tokenizer.json files (seed corpus for fuzz/fuzz_tokenizer_load.c) with
Hugging Face `tokenizers`: one per model type and most normalizers / pre-tokenizers /
post-processors / decoders.  Run: python tools/make_tokenizer_seeds.py fuzz/corpus/fuzz_tokenizer_load"""
import sys
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

TEXT = ["Hello, world! The quick brown fox jumps over the lazy dog.", "naïve café 123 4567 don't",
        "日本語のテキスト 😀 tabs\tand\nnewlines", "aaaa bbbb aaaa abab"] * 3


def save(tok, out, name):
    tok.save(str(out / f"{name}.json"))


def main(out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # WordPiece, Bert pipeline
    t = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    t.normalizer = normalizers.BertNormalizer(lowercase=True)
    t.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    t.train_from_iterator(TEXT, trainers.WordPieceTrainer(vocab_size=120, special_tokens=["[UNK]", "[CLS]", "[SEP]", "[PAD]"]))
    t.post_processor = processors.BertProcessing(("[SEP]", t.token_to_id("[SEP]")), ("[CLS]", t.token_to_id("[CLS]")))
    t.decoder = decoders.WordPiece()
    save(t, out, "wordpiece")
    # byte-level BPE, GPT-2 style
    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t.train_from_iterator(TEXT, trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                                     initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    t.post_processor = processors.ByteLevel(trim_offsets=True)
    t.decoder = decoders.ByteLevel()
    save(t, out, "bytelevel_bpe")
    # SentencePiece-style BPE with byte fallback
    t = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    t.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    t.train_from_iterator(TEXT, trainers.BpeTrainer(vocab_size=200, special_tokens=["<unk>", "<s>", "</s>"] +
                                                     [f"<0x{b:02X}>" for b in range(256)]))
    t.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B:1", special_tokens=[("<s>", 1)])
    t.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    save(t, out, "spm_bpe")
    # Unigram with Metaspace
    t = Tokenizer(models.Unigram())
    t.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase(), normalizers.Strip()])
    t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace()])
    t.train_from_iterator(TEXT, trainers.UnigramTrainer(vocab_size=100, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>"))
    t.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)])
    t.decoder = decoders.Metaspace()
    save(t, out, "unigram")
    # WordLevel with Split / Punctuation / Digits and Roberta processing
    t = Tokenizer(models.WordLevel(unk_token="<unk>"))
    t.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents()])
    t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(r"\s+", "removed"), pre_tokenizers.Punctuation(),
                                               pre_tokenizers.Digits(individual_digits=True)])
    t.train_from_iterator(TEXT, trainers.WordLevelTrainer(special_tokens=["<unk>", "<s>", "</s>"]))
    t.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 1))
    t.decoder = decoders.CTC(pad_token="<unk>")
    save(t, out, "wordlevel")
    # Whitespace pre-tokenizer, BPE with suffix, BPEDecoder, Sequence post-processor
    t = Tokenizer(models.BPE(unk_token="<unk>", end_of_word_suffix="</w>"))
    t.normalizer = normalizers.NFC()
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    t.train_from_iterator(TEXT, trainers.BpeTrainer(vocab_size=150, special_tokens=["<unk>"], end_of_word_suffix="</w>"))
    t.post_processor = processors.Sequence([processors.ByteLevel(trim_offsets=False)])
    t.decoder = decoders.BPEDecoder(suffix="</w>")
    save(t, out, "bpe_suffix")
    # Nmt normalizer, CharDelimiterSplit / FixedLength pre-tokenizers, WordLevel
    t = Tokenizer(models.WordLevel(unk_token="<unk>"))
    t.normalizer = normalizers.Sequence([normalizers.Nmt(), normalizers.NFKD(), normalizers.Lowercase()])
    t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.CharDelimiterSplit(" "), pre_tokenizers.FixedLength(3)])
    t.train_from_iterator(TEXT, trainers.WordLevelTrainer(special_tokens=["<unk>"]))
    save(t, out, "nmt_fixed")
    # added tokens: lstrip / rstrip / single_word / normalized, special and not
    t = Tokenizer(models.BPE(unk_token="<unk>"))
    t.normalizer = normalizers.Lowercase()
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    t.train_from_iterator(TEXT, trainers.BpeTrainer(vocab_size=120, special_tokens=["<unk>"]))
    t.add_special_tokens([AddedToken("[MASK]", lstrip=True, special=True),
                          AddedToken("<extra_id_0>", single_word=True, rstrip=True, special=True)])
    t.add_tokens([AddedToken("Don't", normalized=True), AddedToken("##ing", rstrip=True, normalized=False),
                  AddedToken("World", single_word=True, normalized=True)])
    t.post_processor = processors.TemplateProcessing(single="<unk> $A", pair="$A <unk> $B:1", special_tokens=[("<unk>", 0)])
    save(t, out, "added_tokens")
    # RoBERTa style: ByteLevel with prefix space, offsets trimmed by RobertaProcessing
    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    t.train_from_iterator(TEXT, trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<mask>"],
                                                     initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    t.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True)])
    t.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True, add_prefix_space=True)
    t.decoder = decoders.ByteLevel()
    save(t, out, "roberta")
    # Metaspace prepend_scheme="first", split=False (Mistral / newer Llama style) + Replace regex
    t = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    t.normalizer = normalizers.Replace(Regex(r"\s{2,}"), " ")
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    t.train_from_iterator(TEXT, trainers.BpeTrainer(vocab_size=200, special_tokens=["<unk>", "<s>"] +
                                                     [f"<0x{b:02X}>" for b in range(256)]))
    t.decoder = decoders.Sequence([decoders.Metaspace(replacement="▁", prepend_scheme="first"), decoders.ByteFallback()])
    save(t, out, "metaspace_first")
    # Split behaviours and invert, with string and regex patterns
    t = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(" ", "merged_with_previous"),
        pre_tokenizers.Split(Regex(r"[aeiou]"), "merged_with_next"),
        pre_tokenizers.Split(Regex(r"\d"), "contiguous"),
        pre_tokenizers.Split(Regex(r"[,.!?]+"), "isolated", invert=True),
        pre_tokenizers.Punctuation("removed")])
    t.train_from_iterator(TEXT, trainers.WordPieceTrainer(vocab_size=150, special_tokens=["[UNK]"]))
    t.decoder = decoders.WordPiece(cleanup=False)
    save(t, out, "split_behaviors")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus/fuzz_tokenizer_load")
