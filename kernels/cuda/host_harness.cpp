// Runs the CUDA kernels on the host, for the differential tests (see host_shim.h).
//
// Protocol, little-endian 32-bit words on standard input, repeated until end of input:
//
//     kernel  count  threads  nbufs  { len  word * len } * nbufs  out_len
//
// kernel: 1 sha256_batch(data, spans), 2 merkle_leaves(src), 3 merkle_nodes(src),
// 4 ed25519_verify(items), 5 field_ops(pairs). `count` is the kernel's count argument and
// `threads` how many threads the launch covers (rounded up to whole blocks of 64, like a
// device launch). The answer is `out_len` words on standard output: the output buffer,
// zero-filled before the launch.
#include "host_shim.h"
#include "sha256.cu"
#include "ed25519.cu"

#include <cstdio>
#include <cstdlib>
#include <vector>

static bool read_words(unsigned* out, size_t n) {
    return std::fread(out, 4, n, stdin) == n;
}

static unsigned read_word() {
    unsigned w;
    if (!read_words(&w, 1)) std::exit(0);
    return w;
}

int main() {
    const unsigned block = 64;
    for (;;) {
        unsigned kernel = read_word();
        unsigned count = read_word();
        unsigned threads = read_word();
        unsigned nbufs = read_word();
        std::vector<std::vector<unsigned>> bufs(nbufs);
        for (auto& b : bufs) {
            b.resize(read_word());
            if (!b.empty() && !read_words(b.data(), b.size())) return 2;
        }
        std::vector<unsigned> out(read_word(), 0u);
        // Kernels never read past their inputs; a null-free pointer for empty buffers.
        for (auto& b : bufs) b.push_back(0);
        blockDim = {block, 1, 1};
        gridDim = {(threads + block - 1) / block, 1, 1};
        for (unsigned b = 0; b < gridDim.x; b++) {
            for (unsigned t = 0; t < block; t++) {
                blockIdx = {b, 0, 0};
                threadIdx = {t, 0, 0};
                switch (kernel) {
                case 1: sha256_batch(bufs.at(0).data(), bufs.at(1).data(), out.data(), count); break;
                case 2: merkle_leaves(bufs.at(0).data(), out.data(), count); break;
                case 3: merkle_nodes(bufs.at(0).data(), out.data(), count); break;
                case 4: ed25519_verify(bufs.at(0).data(), out.data(), count); break;
                case 5: field_ops(bufs.at(0).data(), out.data(), count); break;
                default: std::fprintf(stderr, "unknown kernel %u\n", kernel); return 2;
                }
            }
        }
        if (!out.empty() && std::fwrite(out.data(), 4, out.size(), stdout) != out.size()) return 3;
        std::fflush(stdout);
    }
}
