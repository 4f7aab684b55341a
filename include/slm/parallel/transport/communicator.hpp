#pragma once
// What a data-parallel policy needs from the processes it runs over, as concepts, so a policy
// written against them compiles with Mpi (host buffers, CPU ranks) and Nccl (device buffers, one
// GPU per process) and a wrong pairing fails with the concept's name in the message.
//
// Buffer contracts (shared by every communicator):
//   all_reduce_sum(data, n)            in place: data[i] becomes Σ over ranks.       data: (n)
//   reduce_scatter_sum(data, n, slice) data is world_size() consecutive slices of `slice`
//                                      elements (the last may be shorter); afterwards this
//                                      rank's slice holds Σ over ranks of that slice, the rest
//                                      of data is unspecified.                         data: (n)
//   all_gather(data, n, slice)         same slices; every rank's slice is sent to all. data: (n)
//   broadcast(data, n, root)           in place: every rank receives root's data.     data: (n)
//   barrier()                          returns once every rank has called it.
// The stream variant takes the stream last: the operation is queued on it and ordered with the
// caller's kernels there; wait(stream) blocks until it is done (or gives up: see nccl.cuh).
// Host scalars (the loss, a squared norm) are summed by sum_scalar() below with either kind.
#include <concepts>
#include <cstdint>
#include <string>
#include <vector>

namespace slm::parallel {

// Host buffers: calls block until the data is there.
template <class C>
concept Communicator = requires(const C& c, float* f, double* d, int64_t n, int root) {
    { c.rank() } -> std::convertible_to<int>;
    { c.world_size() } -> std::convertible_to<int>;
    c.all_reduce_sum(f, n);
    c.all_reduce_sum(d, n);
    c.reduce_scatter_sum(f, n, n);
    c.all_gather(f, n, n);
    c.broadcast(f, n, root);
    c.barrier();
};

// Device buffers, ordered on a stream (C::Stream, cudaStream_t for Nccl).
template <class C>
concept StreamCommunicator =
    requires(const C& c, float* f, int64_t n, int root, typename C::Stream s) {
        { c.rank() } -> std::convertible_to<int>;
        { c.world_size() } -> std::convertible_to<int>;
        c.all_reduce_sum(f, n, s);
        c.reduce_scatter_sum(f, n, n, s);
        c.all_gather(f, n, n, s);
        c.broadcast(f, n, root, s);
        c.barrier(s);
        c.wait(s);
        // Σ over ranks of a host scalar, ordered after the collectives already queued.
        { c.all_reduce_sum_host(double{}) } -> std::same_as<double>;
    };

// What a data-parallel policy can run over: host buffers (Mpi) or device buffers (Nccl).
template <class C>
concept AnyCommunicator = Communicator<C> || StreamCommunicator<C>;

// Σ over ranks of a host scalar, blocking, over either kind of communicator.
template <AnyCommunicator C>
double sum_scalar(const C& comm, double x) {
    if constexpr (Communicator<C>) {
        comm.all_reduce_sum(&x, 1);
        return x;
    } else {
        return comm.all_reduce_sum_host(x);
    }
}

// Start-up traffic of opaque bytes (an NCCL unique id, each rank's config summary): Mpi and the
// TCP Rendezvous both provide it, so the start-up code is written once for both launch paths.
template <class B>
concept BlobExchange = requires(B& b, const std::string& blob) {
    { b.rank() } -> std::convertible_to<int>;
    { b.world_size() } -> std::convertible_to<int>;
    // Every rank returns rank 0's blob (the others' arguments are ignored).
    { b.broadcast_blob(blob) } -> std::same_as<std::string>;
    // Every rank returns all ranks' blobs, indexed by rank.
    { b.all_gather_blobs(blob) } -> std::same_as<std::vector<std::string>>;
};

}  // namespace slm::parallel
