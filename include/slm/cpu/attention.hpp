#pragma once
// Every attention policy's CPU kernels (AttentionKernel<Policy, cpu::Backend<T>>): what a
// program includes to train any policy of names::Attention on the CPU. A new policy adds its
// kernel file here.
#include "slm/cpu/attention/flash.hpp"
#include "slm/cpu/attention/naive.hpp"
