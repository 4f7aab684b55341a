#pragma once
// Sets and unsets environment variables for one test and puts them back at scope exit. Every
// launcher variable that parallel::from_environment() reads is cleared first, so a test sees only
// what it sets — also when the suite itself runs under mpirun or inside a SLURM job.
#include <cstdlib>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace slm::test {

class ScopedEnv {
public:
    ScopedEnv() : ScopedEnv(std::vector<std::pair<std::string, std::string>>{}) {}
    ScopedEnv(std::initializer_list<std::pair<std::string, std::string>> set)
        : ScopedEnv(std::vector<std::pair<std::string, std::string>>(set)) {}
    // (name, value) pairs to set; everything in launcher_variables() not named here is unset.
    explicit ScopedEnv(const std::vector<std::pair<std::string, std::string>>& set) {
        for (const char* name : launcher_variables()) change(name, std::nullopt);
        for (const auto& [name, value] : set) change(name, value);
    }
    ~ScopedEnv() {
        for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) apply(it->first, it->second);
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

    static std::vector<const char*> launcher_variables() {
        return {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
                "SLURM_PROCID",         "SLURM_NTASKS",         "SLURM_LOCALID",
                "RANK",                 "WORLD_SIZE",           "LOCAL_RANK",
                "MASTER_ADDR",          "MASTER_PORT",          "SLM_COMM_TIMEOUT_S",
                "SLM_RENDEZVOUS_TIMEOUT_S", "SLM_RENDEZVOUS_PORT", "TORCHELASTIC_USE_AGENT_STORE"};
    }

private:
    void change(const std::string& name, const std::optional<std::string>& value) {
        const char* old = std::getenv(name.c_str());
        saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
        apply(name, value);
    }
    static void apply(const std::string& name, const std::optional<std::string>& value) {
        if (value) ::setenv(name.c_str(), value->c_str(), 1);
        else ::unsetenv(name.c_str());
    }
    std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

}  // namespace slm::test
