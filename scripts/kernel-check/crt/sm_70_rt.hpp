// (empty: clang's __clang_cuda_intrinsics.h includes this CUDA toolkit header; the syntax check needs nothing from it)
