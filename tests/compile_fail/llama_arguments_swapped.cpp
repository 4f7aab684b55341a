// Must NOT compile: Llama's arguments swapped (attention first, backend second). The test that
// builds it passes when the compiler names the Backend concept, the contract the first argument
// breaks, rather than a missing member deep inside the model.
#include "slm/slm.hpp"

int main() {
    slm::Llama<slm::attention::Flash, slm::cpu::Backend<float>>* model = nullptr;
    (void)model;
}
