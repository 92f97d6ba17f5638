"""The ctypes structures of python/aios/_lib.py against the C compiler: a C program built here
prints sizeof and offsetof of every field of every mirrored struct of include/aios.h, and each
must equal what ctypes computes.  A field added to or reordered in aios.h without the binding
following fails here (instead of corrupting memory at run time)."""
import ctypes
import os
import subprocess

from harness import ROOT, TMP, Skip, run, test
from pyaios import aios

_lib = aios._lib
STRUCTS = {
    "CpuInfo": "aios_cpu_info", "ModelConfig": "aios_model_config", "TensorInfo": "aios_tensor_info",
    "EncoderParams": "aios_encoder_params", "GeneratorParams": "aios_generator_params",
    "GenerateParams": "aios_generate_params", "GenerateResult": "aios_generate_result",
    "ChatMessage": "aios_chat_message", "Memory": "aios_memory", "StoreParams": "aios_store_params",
    "SearchParams": "aios_search_params", "SearchHit": "aios_search_hit", "StoreStats": "aios_store_stats",
    "Config": "aios_config", "DiffuseParams": "aios_diffuse_params", "DiffuseResult": "aios_diffuse_result",
    "Denoiser": "aios_denoiser", "TokParams": "aios_tok_params", "Encoding": "aios_encoding",
    "TrainProgress": "aios_train_progress", "TrainParams": "aios_train_params", "TrainResult": "aios_train_result",
    "Skill": "aios_skill", "RouterParams": "aios_router_params", "Route": "aios_route",
    "GenUncertainty": "aios_gen_uncertainty", "LearnItem": "aios_learn_item", "EvolveParams": "aios_evolve_params",
    "EvolveGroup": "aios_evolve_group", "EvolveResult": "aios_evolve_result",
}


def fields(cls, prefix=""):
    for name, typ, *_ in cls._fields_:
        yield prefix + name, getattr(cls, name).offset, ctypes.sizeof(typ)
        if isinstance(typ, type) and issubclass(typ, ctypes.Structure):
            for sub, off, size in fields(typ, prefix + name + "."):
                yield sub, getattr(cls, name).offset + off, size


@test
def every_mirrored_struct_has_the_c_layout():
    cc = os.environ.get("CC", "cc")
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "aios.h"', "int main(void) {"]
    expect = []
    for py, c in STRUCTS.items():
        cls = getattr(_lib, py)
        lines.append(f'printf("%zu\\n", sizeof({c}));')
        expect.append((f"sizeof {c}", ctypes.sizeof(cls)))
        for name, off, size in fields(cls):
            lines.append(f'printf("%zu\\n", offsetof({c}, {name}));')
            expect.append((f"{c}.{name}", off))
    lines.append("return 0; }")
    src = os.path.join(TMP, "abi.c")
    exe = os.path.join(TMP, "abi")
    open(src, "w").write("\n".join(lines) + "\n")
    try:
        subprocess.run([cc, "-std=c11", "-I", os.path.join(ROOT, "include"), "-o", exe, src], check=True,
                       capture_output=True, text=True)
    except FileNotFoundError:
        raise Skip("no C compiler")
    got = [int(x) for x in subprocess.run([exe], capture_output=True, text=True, check=True).stdout.split()]
    assert len(got) == len(expect), (len(got), len(expect))
    bad = [(what, e, g) for (what, e), g in zip(expect, got) if e != g]
    assert not bad, bad[:10]
    assert len(expect) > 150, len(expect)


@test
def every_bound_function_exists_in_the_library():
    # _fn() looked each up at import; these are the binding's own C entry points
    for name in ("aios_alloc", "aios_free", "aios_kernel_tier", "aios_encoder_embed", "aios_evolve",
                 "aios_skills_add_adapter", "aios_skills_delete", "aios_skill_vectors"):
        assert hasattr(_lib.lib, name), name
    assert aios.kernel_tier() in ("ref", "avx2", "avx512"), aios.kernel_tier()


if __name__ == "__main__":
    run()
