/* test_core.c — status codes, error detail, mmap, CPU detection, configuration. */
#include <stdlib.h>
#include <sys/stat.h>

#include "core/internal.h"
#include "test.h"

static void test_status_strings(void) {
    CHECK(!strcmp(aios_status_name(AIOS_ERR_FORMAT), "AIOS_ERR_FORMAT"));
    CHECK(!strcmp(aios_status_str(AIOS_OK), "ok"));
    CHECK(!strcmp(aios_status_str((aios_status)-9999), "unknown status"));
    CHECK(aios__err(AIOS_ERR_IO, "x: %d", 42) == AIOS_ERR_IO);
    CHECK(!strcmp(aios_last_error(), "x: 42"));
    aios__err_prefix(AIOS_ERR_IO, "ctx");
    CHECK(!strcmp(aios_last_error(), "ctx: x: 42"));
    aios_clear_error();
    CHECK(!strcmp(aios_last_error(), ""));
}

static void test_map_missing_and_empty(void) {
    aios_map m;
    CHECK(aios__map_file("/nonexistent/file", &m) == AIOS_ERR_NOT_FOUND);
    CHECK(strstr(aios_last_error(), "/nonexistent/file") != NULL);
    char p[600];
    snprintf(p, sizeof p, "%s/empty", aios_test_tmpdir());
    FILE *f = fopen(p, "w");
    fclose(f);
    CHECK_OK(aios__map_file(p, &m));
    CHECK(m.size == 0 && m.data != NULL);
    aios__unmap_file(&m);
    CHECK(aios__map_file(aios_test_tmpdir(), &m) == AIOS_ERR_IO); /* a directory */
}

static void test_map_contents(void) {
    aios_map m;
    CHECK_OK(aios__map_file(aios_test_shared("fixtures/parquet/scalars.parquet"), &m));
    CHECK(m.size > 8 && !memcmp(m.data, "PAR1", 4) && !memcmp(m.data + m.size - 4, "PAR1", 4));
    aios__unmap_file(&m);
}

static void test_cpu(void) {
    const aios_cpu_info *c = aios_cpu();
    CHECK(c->n_cores >= 1);
    CHECK(c == aios_cpu());
#if defined(__x86_64__)
    CHECK(c->sse42); /* every x86-64 we build for */
    if (c->avx2) CHECK(c->avx);
#endif
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_config_defaults(void) {
    aios_config c;
    unsetenv("AIOS_MODEL_PATH"); unsetenv("MODEL_PATH"); unsetenv("AIOS_BATCH_SIZE"); unsetenv("BATCH_SIZE");
    unsetenv("AIOS_DEVICE"); unsetenv("DEVICE"); unsetenv("AIOS_STORAGE_PATH"); unsetenv("STORAGE_PATH");
    char p[600];
    snprintf(p, sizeof p, "%s/empty.yaml", aios_test_tmpdir());
    write_file(p, "# nothing\n");
    CHECK_OK(aios_config_load(&c, p));
    CHECK(c.diffusion.num_steps == 50 && c.diffusion.distilled_steps == 4);
    CHECK(!strcmp(c.diffusion.noise_schedule, "cosine"));
    CHECK(!strcmp(c.model.device, "cpu") && c.model.use_quantization == 1 && c.model.max_batch_size == 16);
    CHECK(c.storage.compression_level == 3 && c.storage.use_float16 == 1);
    CHECK(c.performance.batch_size == 16 && c.performance.max_concurrent == 4);
    CHECK(c.performance.cache_size == 10000 && c.performance.cache_ttl == 3600);
    CHECK(c.evolution.uncertainty_threshold == 0.7 && c.evolution.enable_l3_finetune == 0);
    CHECK(strstr(c.storage.storage_path, "/.aios/memory") != NULL && c.storage.storage_path[0] != '~');
}

static void test_config_file_and_env(void) {
    char p[600];
    snprintf(p, sizeof p, "%s/c.yaml", aios_test_tmpdir());
    write_file(p, "diffusion:\n  num_steps: 12   # fewer\n  noise_schedule: \"linear\"\n\n"
                  "model:\n  device: auto\n  quantization_bits: 4\n"
                  "evolution:\n  uncertainty_threshold: 0.5\n  enable_l3_finetune: yes\n");
    aios_config c;
    setenv("AIOS_BATCH_SIZE", "64", 1);
    setenv("DEVICE", "cuda", 1);
    CHECK_OK(aios_config_load(&c, p));
    CHECK(c.diffusion.num_steps == 12);
    CHECK(!strcmp(c.diffusion.noise_schedule, "linear"));
    CHECK(!strcmp(c.model.device, "cuda")); /* env beats file */
    CHECK(c.model.quantization_bits == 4);
    CHECK(c.evolution.uncertainty_threshold == 0.5 && c.evolution.enable_l3_finetune == 1);
    CHECK(c.performance.batch_size == 64);
    setenv("AIOS_DEVICE", "cpu", 1); /* AIOS_ name wins over the prototype's */
    CHECK_OK(aios_config_load(&c, p));
    CHECK(!strcmp(c.model.device, "cpu"));
    setenv("AIOS_BATCH_SIZE", "zero", 1);
    CHECK(aios_config_load(&c, p) == AIOS_ERR_CONFIG);
    CHECK(strstr(aios_last_error(), "performance.batch_size") && strstr(aios_last_error(), "AIOS_BATCH_SIZE"));
    unsetenv("AIOS_BATCH_SIZE"); unsetenv("DEVICE"); unsetenv("AIOS_DEVICE");
}

static void test_config_rejects(void) {
    static const char *bad[][2] = {
        {"model:\n  quantization_bits: 3\n", "model.quantization_bits"},
        {"model:\n  device: tpu\n", "model.device"},
        {"storage:\n  compression_level: 23\n", "storage.compression_level"},
        {"evolution:\n  uncertainty_threshold: 1.5\n", "evolution.uncertainty_threshold"},
        {"diffusion:\n  noise_schedule: quadratic\n", "diffusion.noise_schedule"},
        {"diffusion:\n  num_stepz: 3\n", "num_stepz"},
        {"bogus:\n  a: 1\n", "bogus"},
        {"model:\n  use_quantization: maybe\n", "model.use_quantization"},
        {"num_steps: 3\n", "num_steps"},
    };
    char p[600];
    snprintf(p, sizeof p, "%s/bad.yaml", aios_test_tmpdir());
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(p, bad[i][0]);
        aios_config c;
        CHECKF(aios_config_load(&c, p) == AIOS_ERR_CONFIG, "case %zu accepted", i);
        CHECKF(strstr(aios_last_error(), bad[i][1]) != NULL, "case %zu: message '%s' lacks '%s'", i, aios_last_error(), bad[i][1]);
    }
    aios_config c;
    CHECK(aios_config_load(&c, "/nonexistent.yaml") == AIOS_ERR_NOT_FOUND);
}

int main(void) {
    RUN(test_status_strings);
    RUN(test_map_missing_and_empty);
    RUN(test_map_contents);
    RUN(test_cpu);
    RUN(test_config_defaults);
    RUN(test_config_file_and_env);
    RUN(test_config_rejects);
    TEST_MAIN_END();
}
