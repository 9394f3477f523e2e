// Weights to VRAM in bounded chunks through double-buffered pinned staging.
#include <cstring>
#include <unordered_map>
#include "loader.cuh"

namespace orcd {
namespace {

// Two pinned host buffers, each with the event of the last copy out of it.
struct Staging {
    void *buf[2] = {nullptr, nullptr};
    cudaEvent_t copied[2] = {nullptr, nullptr};
    ~Staging() {
        for (int i = 0; i < 2; ++i) {
            if (copied[i]) cudaEventSynchronize(copied[i]), cudaEventDestroy(copied[i]);
            if (buf[i]) cudaFreeHost(buf[i]);
        }
    }
    orcd_status init(size_t bytes) {
        for (int i = 0; i < 2; ++i) {
            ORCD_CUDA(cudaHostAlloc(&buf[i], bytes, cudaHostAllocDefault));
            ORCD_CUDA(cudaEventCreateWithFlags(&copied[i], cudaEventDisableTiming));
        }
        return ORCD_OK;
    }
};

// Reports 0, 25, 50 and 75 percent as `done` of `total` bytes are queued; 100 once they are
// all on the device.
struct Progress {
    orcd_progress_fn fn;
    void *user;
    size_t total;
    int next = 0;
    void advance(size_t done) {
        for (; fn && next < 100 && done * 100 >= next * total; next += 25) fn(next, user);
    }
    void finish() {
        advance(total);
        if (fn) fn(100, user);
    }
};

orcd_status upload(const orcd_tensor &t, void *dev, Staging &s, size_t chunk, long *chunks,
                   Progress &progress, size_t *done, cudaStream_t stream) {
    const char *src = static_cast<const char *>(t.host);
    for (size_t off = 0; off < t.nbytes; off += chunk) {
        size_t len = t.nbytes - off < chunk ? t.nbytes - off : chunk;
        int b = int((*chunks)++ % 2);
        ORCD_CUDA(cudaEventSynchronize(s.copied[b]));  // the buffer's previous copy is done
        memcpy(s.buf[b], src + off, len);
        ORCD_CUDA(cudaMemcpyAsync(static_cast<char *>(dev) + off, s.buf[b], len,
                                  cudaMemcpyHostToDevice, stream));
        ORCD_CUDA(cudaEventRecord(s.copied[b], stream));
        progress.advance(*done += len);
    }
    return ORCD_OK;
}

// The device addresses of the tensors that share an allocation: the leading members of each
// group of `joint` that are there, alike (one type; matrices of one row length, or vectors) and
// 16-byte multiples, where they are at least two.
orcd_status place_joint(Allocator &alloc, const orcd_tensor *tensors, int n,
                        const JointGroups &joint,
                        std::unordered_map<std::string, void *> *placed) {
    std::unordered_map<std::string, const orcd_tensor *> by_name;
    for (int i = 0; i < n; ++i) by_name[tensors[i].name] = &tensors[i];
    for (const std::vector<std::string> &group : joint) {
        std::vector<const orcd_tensor *> members;
        size_t bytes = 0;
        for (const std::string &name : group) {
            auto it = by_name.find(name);
            if (it == by_name.end()) break;
            const orcd_tensor *t = it->second, *first = members.empty() ? t : members[0];
            bool vectors = t->ne1 == 1 && first->ne1 == 1;
            if (t->ggml_type != first->ggml_type || (t->ne0 != first->ne0 && !vectors) ||
                t->ne2 != 1 || t->nbytes % 16 || placed->count(name))
                break;
            members.push_back(t);
            bytes += t->nbytes;
        }
        if (members.size() < 2) continue;
        char *dev;
        ORCD_TRY(alloc.alloc(reinterpret_cast<void **>(&dev), bytes, members[0]->name));
        for (const orcd_tensor *t : members) (*placed)[t->name] = dev, dev += t->nbytes;
    }
    return ORCD_OK;
}

}  // namespace

orcd_status upload_tensors(Allocator &alloc, const orcd_tensor *tensors, int n,
                           const JointGroups &joint, size_t chunk_bytes,
                           orcd_progress_fn progress, void *user, cudaStream_t stream,
                           TensorMap *out) {
    if (chunk_bytes == 0) return fail(ORCD_ERR_INVALID, "load chunk size must be positive");
    Staging staging;
    ORCD_TRY(staging.init(chunk_bytes));
    std::unordered_map<std::string, void *> placed;
    ORCD_TRY(place_joint(alloc, tensors, n, joint, &placed));
    size_t total = 0, done = 0;
    for (int i = 0; i < n; ++i) total += tensors[i].nbytes;
    Progress p{progress, user, total};
    p.advance(0);
    long chunks = 0;
    for (int i = 0; i < n; ++i) {
        const orcd_tensor &t = tensors[i];
        void *dev;
        auto joint_at = placed.find(t.name);
        if (joint_at != placed.end()) dev = joint_at->second;
        else ORCD_TRY(alloc.alloc(&dev, t.nbytes, t.name));
        ORCD_TRY(upload(t, dev, staging, chunk_bytes, &chunks, p, &done, stream));
        (*out)[t.name] = Tensor{dev, t.ggml_type, t.ne0, t.ne1, t.ne2, t.nbytes};
    }
    ORCD_CUDA(cudaStreamSynchronize(stream));
    p.finish();
    return ORCD_OK;
}

}  // namespace orcd
