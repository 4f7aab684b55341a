#pragma once
// Every attention policy's GPU kernels (AttentionKernel<Policy, cuda::Backend>): what a program
// includes to train any policy of names::Attention on the GPU. A new policy adds its kernel file
// here.
#include "slm/cuda/attention/flash.cuh"
#include "slm/cuda/attention/naive.cuh"
