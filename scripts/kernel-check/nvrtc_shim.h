// What NVRTC predefines, for a clang device-only syntax check of the kernels (no CUDA toolkit here).
#define CUDA_VERSION 12000
#define __device__ __attribute__((device))
#define __global__ __attribute__((global))
#define __host__ __attribute__((host))
#define __shared__ __attribute__((shared))
#define __constant__ __attribute__((constant))
#define __forceinline__ __inline__ __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...) __attribute__((launch_bounds(__VA_ARGS__)))
#define __restrict__ __restrict
typedef __SIZE_TYPE__ size_t;
typedef unsigned int cuuint32_t;
typedef unsigned long long cuuint64_t;
#define GPUOPS_VEC(T, N, A) \
    struct __attribute__((aligned(A))) N##1 { T x; }; \
    struct __attribute__((aligned(2 * A))) N##2 { T x, y; }; \
    struct N##3 { T x, y, z; }; \
    struct __attribute__((aligned(4 * A > 16 ? 16 : 4 * A))) N##4 { T x, y, z, w; }; \
    __device__ inline N##1 make_##N##1(T x) { return {x}; } \
    __device__ inline N##2 make_##N##2(T x, T y) { return {x, y}; } \
    __device__ inline N##3 make_##N##3(T x, T y, T z) { return {x, y, z}; } \
    __device__ inline N##4 make_##N##4(T x, T y, T z, T w) { return {x, y, z, w}; }
GPUOPS_VEC(signed char, char, 1)
GPUOPS_VEC(unsigned char, uchar, 1)
GPUOPS_VEC(short, short, 2)
GPUOPS_VEC(unsigned short, ushort, 2)
GPUOPS_VEC(int, int, 4)
GPUOPS_VEC(unsigned int, uint, 4)
GPUOPS_VEC(long, long, 8)
GPUOPS_VEC(unsigned long, ulong, 8)
GPUOPS_VEC(long long, longlong, 8)
GPUOPS_VEC(unsigned long long, ulonglong, 8)
GPUOPS_VEC(float, float, 4)
GPUOPS_VEC(double, double, 8)
extern "C" __device__ int printf(const char*, ...);
#define __align__(n) __attribute__((aligned(n)))
#define INT_MAX __INT_MAX__
#define INT_MIN (-__INT_MAX__ - 1)
#define HUGE_VALF __builtin_huge_valf()
#define HUGE_VAL __builtin_huge_val()
#include <__clang_cuda_builtin_vars.h>
#include <__clang_cuda_libdevice_declares.h>
#include <__clang_cuda_device_functions.h>
#include <__clang_cuda_intrinsics.h>
#include <__clang_cuda_math.h>
__device__ inline unsigned atomicAdd(unsigned* p, unsigned v) { return (unsigned)__nvvm_atom_add_gen_i((int*)p, (int)v); }
__device__ inline int atomicAdd(int* p, int v) { return __nvvm_atom_add_gen_i(p, v); }
__device__ inline float atomicAdd(float* p, float v) { return __nvvm_atom_add_gen_f(p, v); }
__device__ inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) { return (unsigned long long)__nvvm_atom_add_gen_ll((long long*)p, (long long)v); }
__device__ inline int atomicMin(int* p, int v) { return __nvvm_atom_min_gen_i(p, v); }
__device__ inline unsigned atomicMin(unsigned* p, unsigned v) { return __nvvm_atom_min_gen_ui(p, v); }
