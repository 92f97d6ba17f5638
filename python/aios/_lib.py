"""Loading libaios and declaring the C API of include/aios.h for ctypes.

Every structure here mirrors one in include/aios.h field for field; tests/py/test_python_abi.py
compiles a C program that prints sizeof/offsetof of each and compares them with these.  ctypes
releases the GIL around every call into a CDLL, so compute calls (encode, generate, diffuse,
search) run while other Python threads continue; callbacks (streaming, progress) take it back
only for their own duration.
"""
from __future__ import annotations

import ctypes
import os
from ctypes import (CFUNCTYPE, POINTER, c_char, c_char_p, c_double, c_float, c_int, c_int32, c_int64, c_size_t,
                    c_uint8, c_uint64, c_void_p)

_HERE = os.path.dirname(os.path.abspath(__file__))


def _candidates():
    env = os.environ.get("AIOS_LIBRARY")
    if env:
        yield env
        return
    yield os.path.join(_HERE, "libaios.so")  # installed wheel: the library beside the module
    yield os.path.join(os.path.dirname(os.path.dirname(_HERE)), "build", "libaios.so")  # source tree


def _load():
    tried = []
    for p in _candidates():
        if os.path.exists(p):
            return ctypes.CDLL(p), p
        tried.append(p)
    raise ImportError("aios: libaios.so not found (looked at %s); build it with `make` or set AIOS_LIBRARY"
                      % ", ".join(tried))


def _wait_policy():
    """OpenMP reads OMP_WAIT_POLICY when it loads: passive waiting on a busy machine (1-minute
    load average >= cores), OpenMP's spinning default on a quiet one, as the aios command chooses
    (src/cli/main.c; measured in docs/kernels.md).  The user's setting wins."""
    if "OMP_WAIT_POLICY" in os.environ:
        return
    try:
        if os.getloadavg()[0] >= (os.cpu_count() or 1):
            os.environ["OMP_WAIT_POLICY"] = "passive"
    except OSError:
        pass


_wait_policy()
lib, LIBRARY_PATH = _load()

status = c_int
P = POINTER


# ---- structures (include/aios.h) ------------------------------------------------------------
class CpuInfo(ctypes.Structure):
    _fields_ = [(n, c_int) for n in ("sse42", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                                     "avx512vnni", "avxvnni", "neon", "n_cores")]


class ModelConfig(ctypes.Structure):
    _fields_ = [
        ("arch", c_int), ("model_type", c_char * 64), ("architecture", c_char * 128), ("model_name", c_char * 256),
        ("n_embd", c_int64), ("n_layer", c_int64), ("n_head", c_int64), ("n_head_kv", c_int64),
        ("head_dim", c_int64), ("n_ff", c_int64), ("n_vocab", c_int64), ("n_ctx_train", c_int64),
        ("type_vocab_size", c_int64), ("norm_eps", c_float), ("rms_norm", c_int), ("hidden_act", c_char * 32),
        ("rope_theta", c_double), ("rope_type", c_char * 32), ("rope_factor", c_double),
        ("rope_low_freq_factor", c_double), ("rope_high_freq_factor", c_double), ("rope_original_max_pos", c_int64),
        ("tie_word_embeddings", c_int), ("attn_qkv_bias", c_int), ("attn_out_bias", c_int), ("mlp_bias", c_int),
        ("qk_norm", c_int), ("pooling", c_int), ("normalize", c_int), ("embedding_dimension", c_int64),
        ("mask_token_id", c_int64), ("pad_token_id", c_int64), ("bos_token_id", c_int64), ("eos_token_id", c_int64),
        ("eos_token_ids", c_int64 * 8), ("n_eos", c_int), ("is_diffusion", c_int), ("attention", c_int),
        ("logit_shift", c_int), ("block_size", c_int64),
    ]


class TensorInfo(ctypes.Structure):
    _fields_ = [("name", c_char_p), ("dtype", c_char_p), ("ndim", c_int), ("shape", c_int64 * 8), ("numel", c_int64),
                ("nbytes", c_size_t), ("quantized", c_int), ("n_scales", c_int64), ("quant_axis", c_int32),
                ("group_size", c_int32), ("symmetric", c_int)]


INT8_ACT = {"auto": 0, "off": 1, "on": 2, "16": 3}  # aios_int8_act


class EncoderParams(ctypes.Structure):
    _fields_ = [("pooling", c_int), ("normalize", c_int), ("max_length", c_int64), ("batch_size", c_int),
                ("n_threads", c_int), ("int8_act", c_int), ("quantize_bits", c_int)]


ENCODE_PROGRESS = CFUNCTYPE(c_int, c_void_p, c_size_t, c_size_t)


class GeneratorParams(ctypes.Structure):
    _fields_ = [("n_ctx", c_int64), ("n_threads", c_int), ("tokenizer_path", c_char_p), ("kv_type", c_int),
                ("int8_act", c_int)]


KV_TYPE = {"f32": 0, "f16": 1}  # aios_kv_type


TOKEN_CALLBACK = CFUNCTYPE(c_int, c_void_p, c_int32, P(c_char), c_size_t)


class GenerateParams(ctypes.Structure):
    _fields_ = [("max_tokens", c_int), ("temperature", c_float), ("top_k", c_int), ("top_p", c_float),
                ("min_p", c_float), ("repetition_penalty", c_float), ("presence_penalty", c_float),
                ("frequency_penalty", c_float), ("seed", c_uint64), ("stop", P(c_char_p)), ("ignore_eos", c_int),
                ("add_bos", c_int), ("on_token", c_void_p), ("user", c_void_p),
                ("logprobs", c_int), ("top_logprobs", c_int)]


class GenerateResult(ctypes.Structure):
    _fields_ = [("ids", P(c_int32)), ("n_ids", c_size_t), ("n_prompt", c_size_t), ("text", c_void_p),
                ("stop", c_int), ("n_reused", c_size_t), ("prefill_s", c_double), ("decode_s", c_double),
                ("logprobs", P(c_float)), ("top_ids", P(c_int32)), ("top_logprobs", P(c_float)), ("n_top", c_int)]


class ChatMessage(ctypes.Structure):
    _fields_ = [("role", c_char_p), ("content", c_char_p)]


class Memory(ctypes.Structure):
    _fields_ = [("memory_id", c_char_p), ("timestamp_us", c_int64), ("content", c_char_p),
                ("embedding", P(c_float)), ("dim", c_int32), ("has_metadata", c_int), ("category", c_char_p),
                ("source", c_char_p), ("has_quality", c_int), ("quality_score", c_float)]


class StoreParams(ctypes.Structure):
    _fields_ = [("create", c_int), ("read_only", c_int), ("dim", c_int32), ("model", c_char_p), ("sync", c_int),
                ("checkpoint_rows", c_int64), ("hnsw_min_rows", c_int64), ("hnsw_m", c_int),
                ("hnsw_ef_construction", c_int), ("compression_level", c_int), ("embed", c_void_p),
                ("embed_user", c_void_p), ("hnsw_ef_search", c_int)]


class SearchParams(ctypes.Structure):
    _fields_ = [("top_k", c_int32), ("threshold", c_float), ("category", c_char_p), ("source", c_char_p),
                ("since_us", c_int64), ("until_us", c_int64), ("min_quality", c_float), ("mode", c_int),
                ("ef_search", c_int), ("n_threads", c_int)]


class SearchHit(ctypes.Structure):
    _fields_ = [("memory", Memory), ("score", c_float)]


class StoreStats(ctypes.Structure):
    _fields_ = [("live", c_int64), ("rows", c_int64), ("tombstones", c_int64), ("wal_records", c_int64),
                ("segments", c_int64), ("index_rows", c_int64), ("dim", c_int32), ("bytes_on_disk", c_int64),
                ("version", c_uint64), ("model", c_char * 1024)]


class Config(ctypes.Structure):
    class _Diffusion(ctypes.Structure):
        _fields_ = [("num_steps", c_int), ("distilled_steps", c_int), ("noise_schedule", c_char * 16),
                    ("sampler_type", c_char * 32)]

    class _Model(ctypes.Structure):
        _fields_ = [("model_path", c_char * 1024), ("device", c_char * 8), ("use_quantization", c_int),
                    ("quantization_bits", c_int), ("max_batch_size", c_int)]

    class _Storage(ctypes.Structure):
        _fields_ = [("storage_path", c_char * 1024), ("compression_level", c_int), ("use_float16", c_int)]

    class _Performance(ctypes.Structure):
        _fields_ = [("batch_size", c_int), ("max_concurrent", c_int), ("cache_size", c_int), ("cache_ttl", c_int)]

    class _Evolution(ctypes.Structure):
        _fields_ = [("uncertainty_threshold", c_double), ("enable_l0_composition", c_int),
                    ("enable_l1_controlnet", c_int), ("enable_l2_lora", c_int), ("enable_l3_finetune", c_int),
                    ("router_threshold", c_double)]

    _fields_ = [("diffusion", _Diffusion), ("model", _Model), ("storage", _Storage), ("performance", _Performance),
                ("evolution", _Evolution), ("loaded_from", c_char * 1024)]


DIFFUSE_ON_STEP = CFUNCTYPE(None, c_void_p, P(c_int32), c_int64, c_int)


class DiffuseParams(ctypes.Structure):
    _fields_ = [("gen_length", c_int64), ("steps", c_int), ("block_length", c_int64), ("algorithm", c_int),
                ("plan", c_int), ("plan_eps", c_double), ("temperature", c_double), ("top_k", c_int),
                ("top_p", c_double), ("guidance_scale", c_double), ("threshold", c_double), ("kv_cache", c_int),
                ("stop_at_eos", c_int), ("seed", c_uint64), ("keep_trace", c_int), ("on_step", c_void_p),
                ("user", c_void_p), ("add_special_tokens", c_int), ("memory_guided", c_int),
                ("memory_store", c_char_p), ("memory_encoder", c_char_p), ("memory_top_k", c_int32),
                ("memory_token_budget", c_int64), ("uncertainty_threshold", c_double)]


class DiffuseResult(ctypes.Structure):
    _fields_ = [("ids", P(c_int32)), ("n_ids", c_int64), ("left_pad", c_int64), ("gen_start", c_int64),
                ("gen_len", c_int64), ("stopped_at_eos", c_int), ("n_steps", c_int), ("n_forward", c_int64),
                ("rows_computed", c_int64), ("logits_rows", c_int64), ("trace", c_void_p), ("n_trace", c_int64),
                ("mean_entropy", c_double), ("mean_one_minus_conf", c_double), ("uncertainty", c_double),
                ("step_entropy", P(c_double)), ("step_one_minus_conf", P(c_double)), ("uncertain", c_int),
                ("seconds", c_double), ("text", c_void_p), ("n_memories", c_int32),
                ("memory_ids", c_void_p), ("memory_scores", P(c_float))]


# ---- functions ------------------------------------------------------------------------------
def _fn(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


vp = c_void_p
_fn("aios_status_str", c_char_p, c_int)
_fn("aios_status_name", c_char_p, c_int)
_fn("aios_last_error", c_char_p)
_fn("aios_clear_error", None)
_fn("aios_cpu", P(CpuInfo))
_fn("aios_cpu_describe", c_char_p, c_char_p, c_size_t)
_fn("aios_config_load", status, P(Config), c_char_p)
_fn("aios_alloc", vp, c_size_t)
_fn("aios_free", None, vp)
_fn("aios_kernel_tier", c_char_p)

_fn("aios_model_open", status, c_char_p, vp, P(vp))
_fn("aios_model_free", None, vp)
_fn("aios_model_get_config", P(ModelConfig), vp)
_fn("aios_model_format", c_char_p, vp)
_fn("aios_model_tokenizer_path", c_char_p, vp)
_fn("aios_model_num_tensors", c_int64, vp)
_fn("aios_model_tensor_info", status, vp, c_int64, P(TensorInfo))
_fn("aios_arch_name", c_char_p, c_int)

_fn("aios_tokenizer_load", status, c_char_p, P(vp))
_fn("aios_tokenizer_free", None, vp)
_fn("aios_tokenizer_encode", status, vp, c_char_p, c_size_t, vp, P(vp))
_fn("aios_encoding_free", None, vp)
_fn("aios_tokenizer_decode", status, vp, P(c_int32), c_size_t, c_int, P(vp), P(c_size_t))

_fn("aios_encoder_default_params", EncoderParams)
_fn("aios_encoder_open", status, c_char_p, P(EncoderParams), P(vp))
_fn("aios_encoder_free", None, vp)
_fn("aios_encoder_dim", c_int64, vp)
_fn("aios_encoder_max_length", c_int64, vp)
_fn("aios_encoder_normalizes", c_int, vp)
_fn("aios_encoder_int8_activations", c_int, vp)
_fn("aios_encode", status, vp, c_char_p, c_size_t, P(c_float))
_fn("aios_encode_batch", status, vp, P(c_char_p), P(c_size_t), c_size_t, vp, vp, vp)
_fn("aios_similarity", c_float, P(c_float), P(c_float), c_int64)
_fn("aios_encoder_embed", status, vp, c_char_p, P(c_float), c_int32)

_fn("aios_generator_default_params", GeneratorParams)
_fn("aios_generator_open", status, c_char_p, P(GeneratorParams), P(vp))
_fn("aios_generator_free", None, vp)
_fn("aios_generate_default_params", GenerateParams)
_fn("aios_generate", status, vp, c_char_p, P(c_int32), c_size_t, P(GenerateParams), P(GenerateResult))
_fn("aios_generate_result_free", None, P(GenerateResult))
_fn("aios_generator_chat_prompt", status, vp, P(ChatMessage), c_size_t, P(vp))
_fn("aios_generator_chat_template", c_char_p, vp)
_fn("aios_generator_tokenize", status, vp, c_char_p, c_int, P(P(c_int32)), P(c_size_t))
_fn("aios_generator_detokenize", status, vp, P(c_int32), c_size_t, P(vp))
_fn("aios_generator_n_vocab", c_int64, vp)
_fn("aios_generator_n_ctx", c_int64, vp)

_fn("aios_diffuse_default_params", DiffuseParams)
_fn("aios_diffusion_model_open", status, c_char_p, P(vp))
_fn("aios_diffusion_model_free", None, vp)
_fn("aios_diffusion_model_denoiser", vp, vp)
_fn("aios_diffusion_model_kind", c_char_p, vp)
_fn("aios_diffusion_model_set_cache", status, vp, c_int64)
_fn("aios_diffuse_sample", status, vp, P(DiffuseParams), P(c_int32), c_int64, P(c_int32), c_int64,
    P(DiffuseResult))
_fn("aios_diffuse", status, vp, c_char_p, c_char_p, P(DiffuseParams), P(DiffuseResult))
_fn("aios_diffuse_result_free", None, P(DiffuseResult))
_fn("aios_diffusion_model_detokenize", status, vp, P(c_int32), c_int64, P(vp))
_fn("aios_remask_parse", c_int, c_char_p)

_fn("aios_store_default_params", StoreParams)
_fn("aios_store_open", status, c_char_p, P(StoreParams), P(vp))
_fn("aios_store_close", None, vp)
_fn("aios_store_add", status, vp, P(Memory), c_char_p)
_fn("aios_store_add_text", status, vp, P(Memory), c_char_p)
_fn("aios_store_get", status, vp, c_char_p, P(Memory))
_fn("aios_store_delete", status, vp, c_char_p)
_fn("aios_store_update", status, vp, P(Memory))
_fn("aios_store_next", status, vp, P(c_int64), P(Memory))
_fn("aios_search_default_params", SearchParams)
_fn("aios_store_search", status, vp, P(c_float), c_int32, P(SearchParams), P(SearchHit), P(c_int32))
_fn("aios_store_search_text", status, vp, c_char_p, P(SearchParams), P(SearchHit), P(c_int32))
_fn("aios_store_flush", status, vp)
_fn("aios_store_compact", status, vp)
_fn("aios_store_build_index", status, vp)
_fn("aios_store_import", status, vp, c_char_p, P(c_int64))
_fn("aios_store_export", status, vp, c_char_p)
_fn("aios_store_stats_get", status, vp, P(StoreStats))
_fn("aios_store_model", c_char_p, vp)
_fn("aios_store_dim", c_int32, vp)
_fn("aios_store_set_embedder", None, vp, vp, vp)

# the C function pointer of aios_encoder_embed, handed to the store as its aios_embed_fn
ENCODER_EMBED = ctypes.cast(lib.aios_encoder_embed, c_void_p).value

AIOS_ARCH_BERT = 1
TIMESTAMP_NOW = -(2 ** 63)
MEMORY_ID_MAX = 256


class Denoiser(ctypes.Structure):
    _fields_ = [("ctx", c_void_p), ("n_vocab", c_int64), ("mask_id", c_int32), ("pad_id", c_int32), ("shift", c_int),
                ("attn", c_int), ("block_size", c_int32), ("max_ctx", c_int64), ("n_eos", c_int64),
                ("eos_ids", c_int32 * 8), ("forward", c_void_p)]


class TokParams(ctypes.Structure):
    _fields_ = [("add_special_tokens", c_int), ("invalid_utf8", c_int), ("max_length", c_size_t),
                ("trunc_strategy", c_int), ("trunc_left", c_int), ("stride", c_size_t), ("pad_strategy", c_int),
                ("pad_length", c_size_t), ("pad_to_multiple_of", c_size_t), ("pad_left", c_int), ("pad_id", c_int32),
                ("pad_type_id", c_int32), ("pad_token", c_char * 64), ("encode_special_tokens", c_int)]


class Encoding(ctypes.Structure):
    _fields_ = [("n", c_size_t), ("ids", P(c_int32)), ("tokens", P(c_char_p)), ("token_lens", P(c_size_t)),
                ("offsets", c_void_p), ("type_ids", P(c_int32)), ("special_tokens_mask", P(c_uint8)),
                ("attention_mask", P(c_uint8))]


lib.aios_diffusion_model_denoiser.restype = P(Denoiser)
_fn("aios_tokenizer_default_params", TokParams, vp)
lib.aios_tokenizer_encode.argtypes = [vp, c_char_p, c_size_t, P(TokParams), P(P(Encoding))]
_fn("aios_encoding_free", None, P(Encoding))
lib.aios_diffuse_sample.argtypes = [P(Denoiser), P(DiffuseParams), P(c_int32), c_int64, P(c_int32), c_int64,
                                    P(DiffuseResult)]
_fn("aios_diffuse_uncertainty_flag", None, P(DiffuseResult), c_double)


# ---- LoRA training (aios_train, adapters on a generator) ---------------------------------------
class TrainProgress(ctypes.Structure):
    _fields_ = [("step", c_int64), ("total_steps", c_int64), ("loss", c_double), ("grad_norm", c_double),
                ("lr", c_double), ("tokens_per_s", c_double), ("elapsed_s", c_double), ("eta_s", c_double)]


TRAIN_PROGRESS = CFUNCTYPE(c_int, c_void_p, P(TrainProgress))


class TrainParams(ctypes.Structure):
    _fields_ = [("rank", c_int64), ("alpha", c_double), ("targets", c_char_p), ("rslora", c_int),
                ("dropout", c_double), ("lr", c_double), ("steps", c_int64), ("epochs", c_int64),
                ("batch", c_int64), ("accum", c_int64), ("weight_decay", c_double), ("clip", c_double),
                ("cosine", c_int), ("warmup", c_int64), ("init_adapter", c_char_p), ("seed", c_uint64),
                ("max_len", c_int64), ("log_jsonl", c_char_p), ("name", c_char_p), ("progress", c_void_p),
                ("progress_user", c_void_p), ("n_threads", c_int), ("from_store", c_char_p), ("checkpoint", c_int),
                ("resume", c_char_p), ("save_every", c_int64), ("save_state", c_int)]


class TrainResult(ctypes.Structure):
    _fields_ = [("steps", c_int64), ("examples", c_int64), ("label_tokens", c_int64),
                ("skipped_truncated", c_int64), ("first_loss", c_double), ("last_loss", c_double),
                ("seconds", c_double), ("lr", c_double), ("total_steps", c_int64), ("activation_bytes", c_uint64),
                ("stopped", c_int)]


_fn("aios_train_default_params", TrainParams)
_fn("aios_train", status, c_char_p, c_char_p, c_char_p, P(TrainParams), P(TrainResult))
_fn("aios_lora_convert", status, c_char_p, c_char_p, c_char_p)
_fn("aios_generator_adapter_add", status, vp, c_char_p, c_float, P(c_int))
_fn("aios_generator_adapter_scale", status, vp, c_int, c_float)
_fn("aios_generator_adapter_remove", status, vp, c_int)
_fn("aios_generator_adapter_count", c_int, vp)


# ---- skill library, routers, uncertainty, the evolution loop (docs/evolution.md) --------------
class Skill(ctypes.Structure):
    _fields_ = [("name", c_char_p), ("description", c_char_p), ("description_embedding", P(c_float)),
                ("centroid", P(c_float)), ("adapter", c_char_p), ("base_model", c_char_p), ("n_pairs", c_int64),
                ("steps", c_int64), ("lr", c_double), ("loss_before", c_double), ("loss_after", c_double),
                ("ppl_before", c_double), ("ppl_after", c_double), ("status", c_char_p), ("reason", c_char_p),
                ("created_us", c_int64)]


class RouterParams(ctypes.Structure):
    _fields_ = [("top_k", c_int), ("threshold", c_double), ("temperature", c_double)]


class Route(ctypes.Structure):
    _fields_ = [("index", c_int64), ("score", c_double), ("weight", c_double)]


class GenUncertainty(ctypes.Structure):
    _fields_ = [("n", c_size_t), ("entropy", P(c_float)), ("p_top1", P(c_float)), ("mean_entropy", c_double),
                ("mean_one_minus_p", c_double), ("max_one_minus_p", c_double), ("score", c_double)]


class LearnItem(ctypes.Structure):
    _fields_ = [("question", c_char_p), ("answer", c_char_p), ("approved", c_int), ("score", c_double),
                ("skills", c_char_p), ("model", c_char_p)]


EVOLVE_LOG = CFUNCTYPE(None, c_void_p, c_char_p)


class EvolveParams(ctypes.Structure):
    _fields_ = [("target", c_char_p), ("regression", c_char_p), ("steps", c_int64), ("extend_steps", c_int64),
                ("rank", c_int64), ("lr", c_double), ("group_threshold", c_double), ("max_ppl_increase", c_double),
                ("require_heldout", c_int), ("dry_run", c_int), ("n_threads", c_int), ("log", c_void_p),
                ("log_user", c_void_p)]


class EvolveGroup(ctypes.Structure):
    _fields_ = [("name", c_char_p), ("status", c_char_p), ("reason", c_char_p), ("n_pairs", c_int64),
                ("n_train", c_int64), ("n_heldout", c_int64), ("steps", c_int64), ("n_reproduced", c_int64),
                ("n_routed", c_int64), ("loss_before", c_double), ("loss_after", c_double),
                ("ppl_before", c_double), ("ppl_after", c_double), ("questions", P(c_char_p))]


class EvolveResult(ctypes.Structure):
    _fields_ = [("n_pairs", c_int64), ("n_groups", c_int64), ("groups", P(EvolveGroup))]


ROUTE_MAX = 16
_fn("aios_skills_open", status, c_char_p, c_int, P(vp))
_fn("aios_skills_close", None, vp)
_fn("aios_skills_dir", c_char_p, vp)
_fn("aios_skills_encoder", c_char_p, vp)
_fn("aios_skills_dim", c_int32, vp)
_fn("aios_skills_count", c_int64, vp)
_fn("aios_skills_at", P(Skill), vp, c_int64)
_fn("aios_skills_get", P(Skill), vp, c_char_p)
_fn("aios_skills_adapter_path", status, vp, P(Skill), c_char_p, c_size_t)
_fn("aios_skills_name_ok", c_int, c_char_p)
_fn("aios_router_default_params", RouterParams)
_fn("aios_skills_route", status, vp, P(c_float), c_int32, P(RouterParams), P(Route), P(c_int))
_fn("aios_skills_add_adapter", status, vp, c_char_p, c_char_p, c_char_p, c_char_p, P(c_char_p), c_int64)
_fn("aios_skills_delete", status, vp, c_char_p)
_fn("aios_skill_vectors", status, vp, c_char_p, P(c_char_p), c_int64, P(P(c_float)), P(P(c_float)))
_fn("aios_learn_record", status, vp, vp, P(LearnItem), c_char_p)
_fn("aios_evolve_default_params", EvolveParams)
_fn("aios_evolve", status, c_char_p, c_char_p, c_char_p, P(EvolveParams), P(EvolveResult))
_fn("aios_evolve_result_free", None, P(EvolveResult))
_fn("aios_generator_set_router", status, vp, c_int, c_int, c_float)
_fn("aios_router_parse", status, c_char_p, P(c_int))
_fn("aios_generator_uncertainty", P(GenUncertainty), vp)
