/*
 * A fake NVML (libnvidia-ml) for GpuOps' tests: it exports the NVML functions GpuOps binds, with the
 * struct layouts of NVIDIA's nvml.h, and answers from a scriptable per-GPU state.
 *
 * State lives in a key=value text file named by FAKE_NVML_STATE, read on every call that needs it and
 * written back (temp file + rename) by set calls, so it is shared ACROSS PROCESSES (a test can kill a
 * process mid-sweep and let a second process read and restore the power limit).
 * Without FAKE_NVML_STATE (or with a missing file) the defaults below apply (two GPUs). In-process tests set the
 * path with the extra export fake_nvml_set_state (a .NET process cannot change its native environment).
 *
 * Keys (gpuN. = per GPU N):
 *   gpus=2                      number of GPUs
 *   driver=580.00.01            nvmlSystemGetDriverVersion
 *   cuda=13000                  nvmlSystemGetCudaDriverVersion(_v2)
 *   init=ok|driver_not_loaded   what nvmlInit_v2 answers
 *   t0=<unix seconds>           time origin for ramps, resets and loss (default: the file's first read)
 *   gpuN.name / .uuid / .busid / .cc (e.g. 9.0)
 *   gpuN.limit_mw / .default_mw / .min_mw / .max_mw      power limits (milliwatts; limit_mw=unsupported: no power management)
 *   gpuN.set=ok|no_permission   nvmlDeviceSetPowerManagementLimit answers NO_PERMISSION when no_permission
 *   gpuN.power_base_mw / .power_ramp_mw_s / .power_max_mw  demand(t) = min(max, base + ramp*t); power = min(limit, demand)
 *   gpuN.energy=counter|unsupported                      nvmlDeviceGetTotalEnergyConsumption
 *   gpuN.energy_offset_mj       counter value at t0
 *   gpuN.energy_reset_s         the counter restarts from 0 at t0 + this many seconds (-1: never)
 *   gpuN.energy_mj / .energy_at  energy folded in at limit changes (written by the fake itself)
 *   gpuN.fields=ok|unsupported  nvmlDeviceGetFieldValues (per-field NOT_SUPPORTED when unsupported)
 *   gpuN.power_usage=ok|unsupported                     nvmlDeviceGetPowerUsage
 *   gpuN.lost_s                 from t0 + this many seconds every call on the GPU answers GPU_IS_LOST (-1: never)
 *   gpuN.temp / .util_gpu / .util_mem / .sm_clock / .mem_clock / .max_sm_clock / .max_mem_clock
 *   gpuN.mem_total / .mem_used  bytes
 *   gpuN.throttle=0x4           clock event reasons bit mask
 *   gpuN.persistence=0|1  gpuN.mig=0|1|unsupported  gpuN.ecc=0|1|unsupported
 *   gpuN.procs=pid:bytes,pid:bytes   compute processes
 *   calls.set                   number of successful set calls (counter, written by the fake)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

typedef int nvmlReturn_t;
typedef void *nvmlDevice_t;

enum {
    NVML_SUCCESS = 0, NVML_ERROR_UNINITIALIZED = 1, NVML_ERROR_INVALID_ARGUMENT = 2, NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NO_PERMISSION = 4, NVML_ERROR_NOT_FOUND = 6, NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_DRIVER_NOT_LOADED = 9, NVML_ERROR_GPU_IS_LOST = 15, NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
    NVML_ERROR_UNKNOWN = 999,
};

/* Layouts from nvml.h. */
typedef struct { char busIdLegacy[16]; unsigned int domain, bus, device, pciDeviceId, pciSubSystemId; char busId[32]; } nvmlPciInfo_t;
typedef struct { unsigned int version; unsigned long long total, reserved, free, used; } nvmlMemory_v2_t;
typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
/* _v3 of GetComputeRunningProcesses takes nvmlProcessInfo_v2_t (24 bytes): the 32-byte variant with
   usedGpuCcProtectedMemory appeared in one R535 header and was reverted; the ABI is 24 bytes. */
typedef struct { unsigned int pid; unsigned long long usedGpuMemory; unsigned int gpuInstanceId, computeInstanceId; } nvmlProcessInfo_v2_t;
typedef union { double dVal; int siVal; unsigned int uiVal; unsigned long ulVal; unsigned long long ullVal; long long sllVal; } nvmlValue_t;
typedef struct { unsigned int fieldId, scopeId; long long timestamp, latencyUsec; int valueType; nvmlReturn_t nvmlReturn; nvmlValue_t value; } nvmlFieldValue_t;
typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;

_Static_assert(sizeof(nvmlPciInfo_t) == 68, "nvmlPciInfo_t");
_Static_assert(sizeof(nvmlMemory_v2_t) == 40, "nvmlMemory_v2_t");
_Static_assert(sizeof(nvmlProcessInfo_v2_t) == 24, "nvmlProcessInfo_v2_t");
_Static_assert(sizeof(nvmlFieldValue_t) == 40, "nvmlFieldValue_t");

#define MAX_KEYS 256
#define MAX_GPUS 8
static char g_keys[MAX_KEYS][64];
static char g_vals[MAX_KEYS][256];
static int g_count;
static int g_initialized;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *get(const char *key)
{
    for (int i = 0; i < g_count; i++)
        if (strcmp(g_keys[i], key) == 0) return g_vals[i];
    return NULL;
}

static void put(const char *key, const char *val)
{
    for (int i = 0; i < g_count; i++)
        if (strcmp(g_keys[i], key) == 0) { snprintf(g_vals[i], sizeof g_vals[i], "%s", val); return; }
    if (g_count < MAX_KEYS) {
        snprintf(g_keys[g_count], sizeof g_keys[0], "%s", key);
        snprintf(g_vals[g_count], sizeof g_vals[0], "%s", val);
        g_count++;
    }
}

static void defaults(void)
{
    g_count = 0;
    put("gpus", "2");
    put("driver", "580.00.01");
    put("cuda", "13000");
    put("init", "ok");
    for (int i = 0; i < 2; i++) {
        char k[64], v[128];
#define P(name, fmt, ...) do { snprintf(k, sizeof k, "gpu%d." name, i); snprintf(v, sizeof v, fmt, __VA_ARGS__); put(k, v); } while (0)
        P("name", "NVIDIA Fake H100 %d", i);
        P("uuid", "GPU-fa4e0000-0000-4000-8000-00000000000%d", i);
        P("busid", "00000000:%02X:00.0", 0x18 + i);
        P("cc", "%s", "9.0");
        P("limit_mw", "%d", 700000);
        P("default_mw", "%d", 700000);
        P("min_mw", "%d", 200000);
        P("max_mw", "%d", 700000);
        P("set", "%s", "ok");
        P("power_base_mw", "%d", 100000 + 50000 * i);
        P("power_ramp_mw_s", "%d", 0);
        P("power_max_mw", "%d", 1000000);
        P("energy", "%s", "counter");
        P("energy_offset_mj", "%d", 1000000);
        P("energy_reset_s", "%d", -1);
        P("fields", "%s", "ok");
        P("power_usage", "%s", "ok");
        P("lost_s", "%d", -1);
        P("temp", "%d", 40 + i);
        P("util_gpu", "%d", 10);
        P("util_mem", "%d", 5);
        P("sm_clock", "%d", 1755);
        P("mem_clock", "%d", 2619);
        P("max_sm_clock", "%d", 1980);
        P("max_mem_clock", "%d", 2619);
        P("mem_total", "%lld", 85899345920LL);
        P("mem_used", "%lld", 1073741824LL);
        P("throttle", "%s", "0x1");
        P("persistence", "%d", 1);
        P("mig", "%d", 0);
        P("ecc", "%d", 1);
        P("procs", "%s", "");
#undef P
    }
}

static char g_state_override[2048];
static struct stat g_loaded; /* the state file last parsed (writers replace it by rename: a new inode) */
static int g_have_loaded;

/* Tests in a .NET process call this (through the loaded library's export): .NET's
   Environment.SetEnvironmentVariable does not change the native environment that getenv reads.
   NULL or "" goes back to FAKE_NVML_STATE. */
EXPORT void fake_nvml_set_state(const char *path)
{
    pthread_mutex_lock(&g_lock);
    snprintf(g_state_override, sizeof g_state_override, "%s", path ? path : "");
    g_have_loaded = 0;
    pthread_mutex_unlock(&g_lock);
}

static const char *state_path(void)
{
    if (g_state_override[0]) return g_state_override;
    const char *p = getenv("FAKE_NVML_STATE");
    return p && *p ? p : NULL;
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Defaults, then the file's lines on top; re-parsed only when the file changed. Called under g_lock. */
static void load(void)
{
    const char *path = state_path();
    struct stat st;
    if (!path || stat(path, &st) != 0) { g_have_loaded = 0; defaults(); return; }
    if (g_have_loaded && same_file(&st, &g_loaded)) return;
    defaults();
    FILE *f = fopen(path, "r");
    if (!f) { g_have_loaded = 0; return; }
    g_loaded = st;
    g_have_loaded = 1;
    char line[400];
    while (fgets(line, sizeof line, f)) {
        char *nl = strpbrk(line, "\r\n");
        if (nl) *nl = 0;
        if (line[0] == '#' || line[0] == 0) continue;
        char *eq = strchr(line, '=');
        if (!eq) continue;
        *eq = 0;
        put(line, eq + 1);
    }
    fclose(f);
}

/* Write the whole state atomically (temp file + rename). Called under g_lock. */
static int save(void)
{
    const char *path = state_path();
    if (!path) return 0;
    char tmp[2200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    for (int i = 0; i < g_count; i++) fprintf(f, "%s=%s\n", g_keys[i], g_vals[i]);
    fflush(f);
    fsync(fileno(f));
    fclose(f);
    g_have_loaded = 0;
    return rename(tmp, path);
}

static double num(const char *key, double dflt)
{
    const char *v = get(key);
    if (!v || !*v) return dflt;
    return strtod(v, NULL);
}

static double gnum(int gpu, const char *name, double dflt)
{
    char k[64];
    snprintf(k, sizeof k, "gpu%d.%s", gpu, name);
    return num(k, dflt);
}

static const char *gstr(int gpu, const char *name)
{
    char k[64];
    snprintf(k, sizeof k, "gpu%d.%s", gpu, name);
    const char *v = get(k);
    return v ? v : "";
}

static void gput(int gpu, const char *name, const char *fmt, double value)
{
    char k[64], v[64];
    snprintf(k, sizeof k, "gpu%d.%s", gpu, name);
    snprintf(v, sizeof v, fmt, value);
    put(k, v);
}

static double t0(void)
{
    const char *v = get("t0");
    if (v && *v) return strtod(v, NULL);
    static double first;
    if (first == 0) first = now_s();
    return first;
}

static int gpu_count(void) { int n = (int)num("gpus", 2); return n < 0 ? 0 : n > MAX_GPUS ? MAX_GPUS : n; }

/* Resolve a handle to a GPU index after (re)loading the state; checks loss. */
static nvmlReturn_t begin(nvmlDevice_t dev, int *gpu)
{
    if (!g_initialized) return NVML_ERROR_UNINITIALIZED;
    intptr_t h = (intptr_t)dev;
    load();
    if (h < 1 || h > gpu_count()) return NVML_ERROR_INVALID_ARGUMENT;
    *gpu = (int)h - 1;
    double lost = gnum(*gpu, "lost_s", -1);
    if (lost >= 0 && now_s() >= t0() + lost) return NVML_ERROR_GPU_IS_LOST;
    return NVML_SUCCESS;
}

#define BEGIN(dev)                      \
    int gpu;                            \
    pthread_mutex_lock(&g_lock);        \
    nvmlReturn_t rc_ = begin(dev, &gpu); \
    if (rc_ != NVML_SUCCESS) { pthread_mutex_unlock(&g_lock); return rc_; }
#define END(rc) do { pthread_mutex_unlock(&g_lock); return (rc); } while (0)

/* Integral in mJ of min(limit, min(pmax, base + ramp*(t - t0))) dt over [a, b] (mW * s = mJ), numerically. */
static double integrate_mj(int gpu, double limit, double a, double b)
{
    if (b <= a) return 0;
    double base = gnum(gpu, "power_base_mw", 100000), ramp = gnum(gpu, "power_ramp_mw_s", 0), pmax = gnum(gpu, "power_max_mw", 1e9);
    double origin = t0();
    int steps = ramp == 0 ? 1 : 200;
    double h = (b - a) / steps, sum = 0;
    for (int i = 0; i < steps; i++) {
        double t = a + (i + 0.5) * h;
        double d = base + ramp * (t - origin);
        if (d > pmax) d = pmax;
        if (d < 0) d = 0;
        sum += (d < limit ? d : limit) * h;
    }
    return sum;
}

static double power_mw(int gpu, double t)
{
    double base = gnum(gpu, "power_base_mw", 100000), ramp = gnum(gpu, "power_ramp_mw_s", 0), pmax = gnum(gpu, "power_max_mw", 1e9);
    double d = base + ramp * (t - t0());
    if (d > pmax) d = pmax;
    double limit = gnum(gpu, "limit_mw", 700000);
    return d < limit ? d : limit;
}

/* Total energy (mJ) since t0 + offset, folding limit changes recorded in energy_mj/energy_at. */
static double energy_since_origin(int gpu, double t)
{
    double at = gnum(gpu, "energy_at", -1);
    double folded = gnum(gpu, "energy_mj", 0);
    double from = at >= 0 ? at : t0();
    return folded + integrate_mj(gpu, gnum(gpu, "limit_mw", 700000), from, t);
}

static unsigned long long counter_mj(int gpu, double t)
{
    double reset = gnum(gpu, "energy_reset_s", -1);
    double total = energy_since_origin(gpu, t);
    if (reset >= 0 && t >= t0() + reset) {
        double at_reset = energy_since_origin(gpu, t0() + reset);
        return (unsigned long long)(total - at_reset);
    }
    return (unsigned long long)(gnum(gpu, "energy_offset_mj", 0) + total);
}

static void copy_str(char *dst, unsigned int len, const char *src)
{
    if (len == 0) return;
    snprintf(dst, len, "%s", src);
}

/* ---- library ---- */

EXPORT nvmlReturn_t nvmlInit_v2(void)
{
    pthread_mutex_lock(&g_lock);
    load();
    const char *init = get("init");
    if (init && strcmp(init, "driver_not_loaded") == 0) END(NVML_ERROR_DRIVER_NOT_LOADED);
    if (get("t0") == NULL) t0();
    g_initialized++;
    END(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlInit(void) { return nvmlInit_v2(); }

EXPORT nvmlReturn_t nvmlShutdown(void)
{
    pthread_mutex_lock(&g_lock);
    if (!g_initialized) END(NVML_ERROR_UNINITIALIZED);
    g_initialized--;
    END(NVML_SUCCESS);
}

EXPORT const char *nvmlErrorString(nvmlReturn_t r)
{
    switch (r) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument version mismatch";
    default: return "Unknown Error";
    }
}

EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
    pthread_mutex_lock(&g_lock);
    load();
    const char *v = get("driver");
    copy_str(version, length, v ? v : "");
    END(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v)
{
    pthread_mutex_lock(&g_lock);
    load();
    *v = (int)num("cuda", 13000);
    END(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *v) { return nvmlSystemGetCudaDriverVersion_v2(v); }

EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count)
{
    pthread_mutex_lock(&g_lock);
    if (!g_initialized) END(NVML_ERROR_UNINITIALIZED);
    load();
    *count = (unsigned int)gpu_count();
    END(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
    pthread_mutex_lock(&g_lock);
    if (!g_initialized) END(NVML_ERROR_UNINITIALIZED);
    load();
    if ((int)index >= gpu_count()) END(NVML_ERROR_INVALID_ARGUMENT);
    *device = (nvmlDevice_t)(intptr_t)(index + 1);
    END(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device)
{
    pthread_mutex_lock(&g_lock);
    if (!g_initialized) END(NVML_ERROR_UNINITIALIZED);
    load();
    for (int i = 0; i < gpu_count(); i++)
        if (strcmp(gstr(i, "uuid"), uuid) == 0) { *device = (nvmlDevice_t)(intptr_t)(i + 1); END(NVML_SUCCESS); }
    END(NVML_ERROR_NOT_FOUND);
}

EXPORT nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t dev, unsigned int *index) { BEGIN(dev); *index = (unsigned)gpu; END(NVML_SUCCESS); }
EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t dev, char *name, unsigned int len) { BEGIN(dev); copy_str(name, len, gstr(gpu, "name")); END(NVML_SUCCESS); }
EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t dev, char *uuid, unsigned int len) { BEGIN(dev); copy_str(uuid, len, gstr(gpu, "uuid")); END(NVML_SUCCESS); }

EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t dev, nvmlPciInfo_t *pci)
{
    BEGIN(dev);
    memset(pci, 0, sizeof *pci);
    const char *bus = gstr(gpu, "busid");
    copy_str(pci->busId, sizeof pci->busId, bus);
    copy_str(pci->busIdLegacy, sizeof pci->busIdLegacy, strlen(bus) > 4 ? bus + 4 : bus);
    pci->bus = 0x18 + (unsigned)gpu;
    pci->pciDeviceId = 0x233010de;
    END(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t dev, nvmlMemory_v2_t *m)
{
    BEGIN(dev);
    if (m->version != (unsigned)(sizeof(nvmlMemory_v2_t) | (2u << 24))) END(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
    m->total = (unsigned long long)gnum(gpu, "mem_total", 0);
    m->used = (unsigned long long)gnum(gpu, "mem_used", 0);
    m->reserved = 0;
    m->free = m->total - m->used;
    END(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t dev, nvmlMemory_t *m)
{
    BEGIN(dev);
    m->total = (unsigned long long)gnum(gpu, "mem_total", 0);
    m->used = (unsigned long long)gnum(gpu, "mem_used", 0);
    m->free = m->total - m->used;
    END(NVML_SUCCESS);
}

static nvmlReturn_t procs(int gpu, unsigned int *count, nvmlProcessInfo_v2_t *infos)
{
    nvmlProcessInfo_v2_t list[32];
    unsigned int n = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", gstr(gpu, "procs"));
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok && n < 32; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(tok, ':');
        list[n].pid = (unsigned)strtoul(tok, NULL, 10);
        list[n].usedGpuMemory = colon ? strtoull(colon + 1, NULL, 10) : 0;
        list[n].gpuInstanceId = 0xFFFFFFFFu;
        list[n].computeInstanceId = 0xFFFFFFFFu;
        n++;
    }
    if (*count < n) { *count = n; return n == 0 ? NVML_SUCCESS : NVML_ERROR_INSUFFICIENT_SIZE; }
    *count = n;
    if (n) memcpy(infos, list, n * sizeof list[0]);
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t dev, unsigned int *count, nvmlProcessInfo_v2_t *infos)
{
    BEGIN(dev);
    END(procs(gpu, count, infos));
}

EXPORT nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t dev, unsigned int *count, nvmlProcessInfo_v2_t *infos)
{
    BEGIN(dev);
    (void)infos;
    *count = 0;
    END(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetFieldValues(nvmlDevice_t dev, int n, nvmlFieldValue_t *values)
{
    BEGIN(dev);
    int supported = strcmp(gstr(gpu, "fields"), "unsupported") != 0;
    double t = now_s();
    for (int i = 0; i < n; i++) {
        values[i].timestamp = (long long)(t * 1e6);
        values[i].latencyUsec = 0;
        if (!supported || (values[i].fieldId != 185 && values[i].fieldId != 186)) {
            values[i].nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
            continue;
        }
        values[i].nvmlReturn = NVML_SUCCESS;
        values[i].valueType = 1; /* NVML_VALUE_TYPE_UNSIGNED_INT, milliwatts */
        double p = power_mw(gpu, t);
        values[i].value.uiVal = (unsigned int)(values[i].fieldId == 185 ? p : p + 1000); /* instant = average + 1 W */
    }
    END(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t dev, unsigned int *mw)
{
    BEGIN(dev);
    if (strcmp(gstr(gpu, "power_usage"), "unsupported") == 0) END(NVML_ERROR_NOT_SUPPORTED);
    *mw = (unsigned int)power_mw(gpu, now_s());
    END(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t dev, unsigned long long *mj)
{
    BEGIN(dev);
    if (strcmp(gstr(gpu, "energy"), "unsupported") == 0) END(NVML_ERROR_NOT_SUPPORTED);
    *mj = counter_mj(gpu, now_s());
    END(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t dev, unsigned int *mw)
{
    BEGIN(dev);
    if (strcmp(gstr(gpu, "limit_mw"), "unsupported") == 0) END(NVML_ERROR_NOT_SUPPORTED);   /* (no power management) */
    *mw = (unsigned)gnum(gpu, "limit_mw", 0);
    END(NVML_SUCCESS);
}
EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementDefaultLimit(nvmlDevice_t dev, unsigned int *mw) { BEGIN(dev); *mw = (unsigned)gnum(gpu, "default_mw", 0); END(NVML_SUCCESS); }
EXPORT nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t dev, unsigned int *mw)
{
    BEGIN(dev);
    if (strcmp(gstr(gpu, "limit_mw"), "unsupported") == 0) END(NVML_ERROR_NOT_SUPPORTED);
    *mw = (unsigned)gnum(gpu, "limit_mw", 0);
    END(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementLimitConstraints(nvmlDevice_t dev, unsigned int *min, unsigned int *max)
{
    BEGIN(dev);
    *min = (unsigned)gnum(gpu, "min_mw", 0);
    *max = (unsigned)gnum(gpu, "max_mw", 0);
    END(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceSetPowerManagementLimit(nvmlDevice_t dev, unsigned int mw)
{
    BEGIN(dev);
    if (strcmp(gstr(gpu, "set"), "no_permission") == 0) END(NVML_ERROR_NO_PERMISSION);
    if (mw < (unsigned)gnum(gpu, "min_mw", 0) || mw > (unsigned)gnum(gpu, "max_mw", 0)) END(NVML_ERROR_INVALID_ARGUMENT);
    double t = now_s();
    gput(gpu, "energy_mj", "%.3f", energy_since_origin(gpu, t));
    gput(gpu, "energy_at", "%.6f", t);
    gput(gpu, "limit_mw", "%.0f", mw);
    char v[32];
    snprintf(v, sizeof v, "%.0f", num("calls.set", 0) + 1);
    put("calls.set", v);
    if (get("t0") == NULL) { snprintf(v, sizeof v, "%.6f", t0()); put("t0", v); }
    END(save() == 0 ? NVML_SUCCESS : NVML_ERROR_UNKNOWN);
}

enum { CLOCK_GRAPHICS = 0, CLOCK_SM = 1, CLOCK_MEM = 2 };

EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t dev, int type, unsigned int *mhz)
{
    BEGIN(dev);
    if (type == CLOCK_GRAPHICS || type == CLOCK_SM) *mhz = (unsigned)gnum(gpu, "sm_clock", 0);
    else if (type == CLOCK_MEM) *mhz = (unsigned)gnum(gpu, "mem_clock", 0);
    else END(NVML_ERROR_NOT_SUPPORTED);
    END(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t dev, int type, unsigned int *mhz)
{
    BEGIN(dev);
    if (type == CLOCK_GRAPHICS || type == CLOCK_SM) *mhz = (unsigned)gnum(gpu, "max_sm_clock", 0);
    else if (type == CLOCK_MEM) *mhz = (unsigned)gnum(gpu, "max_mem_clock", 0);
    else END(NVML_ERROR_NOT_SUPPORTED);
    END(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t dev, unsigned long long *reasons)
{
    BEGIN(dev);
    *reasons = strtoull(gstr(gpu, "throttle"), NULL, 0);
    END(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t dev, unsigned long long *reasons)
{
    return nvmlDeviceGetCurrentClocksEventReasons(dev, reasons);
}

EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t dev, int sensor, unsigned int *temp)
{
    BEGIN(dev);
    if (sensor != 0) END(NVML_ERROR_INVALID_ARGUMENT);
    *temp = (unsigned)gnum(gpu, "temp", 0);
    END(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t dev, nvmlUtilization_t *u)
{
    BEGIN(dev);
    u->gpu = (unsigned)gnum(gpu, "util_gpu", 0);
    u->memory = (unsigned)gnum(gpu, "util_mem", 0);
    END(NVML_SUCCESS);
}

static nvmlReturn_t mode(int gpu, const char *key, unsigned int *current, unsigned int *pending)
{
    const char *v = gstr(gpu, key);
    if (strcmp(v, "unsupported") == 0) return NVML_ERROR_NOT_SUPPORTED;
    *current = (unsigned)atoi(v);
    if (pending) *pending = *current;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t dev, unsigned int *m) { BEGIN(dev); END(mode(gpu, "persistence", m, NULL)); }
EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t dev, unsigned int *c, unsigned int *p) { BEGIN(dev); END(mode(gpu, "mig", c, p)); }
EXPORT nvmlReturn_t nvmlDeviceGetEccMode(nvmlDevice_t dev, unsigned int *c, unsigned int *p) { BEGIN(dev); END(mode(gpu, "ecc", c, p)); }

EXPORT nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t dev, int *major, int *minor)
{
    BEGIN(dev);
    const char *cc = gstr(gpu, "cc");
    *major = atoi(cc);
    const char *dot = strchr(cc, '.');
    *minor = dot ? atoi(dot + 1) : 0;
    END(NVML_SUCCESS);
}
