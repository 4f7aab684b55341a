// Must NOT compile: a type that is no attention policy as Llama's second argument. The test that
// builds it passes when the compiler names the AttentionPolicy concept.
#include "slm/slm.hpp"

struct NotAnAttention {};

int main() {
    slm::Llama<slm::cpu::Backend<float>, NotAnAttention>* model = nullptr;
    (void)model;
}
