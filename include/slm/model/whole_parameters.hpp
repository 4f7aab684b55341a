#pragma once
// model::WholeParameters: every rank holds the whole flat parameter and gradient buffers (and the
// working copy, on backends that keep one). The storage of Single, Ddp and Zero<1>: gathering a
// unit is a view of the whole buffer and handing a gradient back does nothing.
#include <cstdint>
#include <optional>

#include "slm/model/parameter_storage.hpp"

namespace slm::model {

struct WholeParameters {
    template <Backend B>
    class Store;
};

template <Backend B>
class WholeParameters::Store {
public:
    using Master = typename B::Master;
    using Act = typename B::Act;
    using Grad = typename B::Grad;

    Store(B& backend, const ParameterLayout& layout, const ParameterUnits&, const WholeParameters&)
        : backend_(backend),
          total_(layout.total()),
          params_(backend.template allocate<Master>(total_)),
          grads_(backend.template allocate<Grad>(total_)) {
        if constexpr (B::has_working_copy) working_.emplace(backend.template allocate<Act>(total_));
    }

    FlatView<Act> gather(int64_t) { return {weights(), 0}; }
    void release(int64_t) {}
    FlatView<Grad> gradients_for(int64_t) { return {grads_.data(), 0}; }
    void gradients_done(int64_t) {}

    Master* parameters() { return params_.data(); }
    Grad* gradients() { return grads_.data(); }
    Act* working() {
        if constexpr (B::has_working_copy) return working_->data();
        else return nullptr;
    }
    // What the GEMMs read: the master weights, or their low-precision copy.
    Act* weights() {
        if constexpr (B::has_working_copy) return working_->data();
        else return params_.data();
    }
    int64_t parameter_count() const { return total_; }
    int64_t gradient_count() const { return total_; }

    void set_parameters(const Master* host) {
        backend_.upload(params_.data(), host, total_);
        refresh_working_copy();
    }
    // host may be null: there is nothing to gather, so a rank that wants nothing does nothing.
    void get_parameters(Master* host) {
        if (host) backend_.download(host, params_.data(), total_);
    }
    void get_gradients(Grad* host) { backend_.download(host, grads_.data(), total_); }
    void zero_gradients() { backend_.zero(grads_.data(), total_); }
    void refresh_working_copy() {
        if constexpr (B::has_working_copy) backend_.convert(params_.data(), working_->data(), total_);
    }

    StateBytes bytes() const {
        StateBytes b;
        b.parameters = buffer_bytes(params_) + (working_ ? buffer_bytes(*working_) : 0);
        b.gradients = buffer_bytes(grads_);
        return b;
    }

private:
    B& backend_;
    int64_t total_;
    typename B::template Buffer<Master> params_;
    typename B::template Buffer<Grad> grads_;
    std::optional<typename B::template Buffer<Act>> working_;
};

}  // namespace slm::model
