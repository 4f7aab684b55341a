#pragma once
// Documents → tokens → shards: each document becomes <s>, its tokens, </s>. Its text is cut at
// line breaks into chunks of about 8 KB, encoded 512 at a time in parallel and appended in order.
// Small chunks because SentencePiece's BPE encode slows down superlinearly on long inputs (1 MB
// calls run 2.5x slower than 8 KB ones on the KJV text); cuts at line breaks so no word is split
// between two encode calls. A chunk never spans two documents, so <s> and </s> go between
// chunks, and a document's cuts do not depend on its neighbours: a text file encodes to the same
// tokens whatever else is in the corpus.
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "slm/data/shard_writer.hpp"
#include "slm/data/tokenizer.hpp"

namespace slm::data {

class DocumentEncoder {
public:
    static constexpr size_t chunk_bytes = 8 << 10;
    static constexpr size_t chunks_per_round = 512;

    DocumentEncoder(const Tokenizer& tokenizer, ShardWriter& shards)
        : tokenizer_(tokenizer), shards_(shards), chunks_(1) {}

    void begin_document() { chunks_.back().bos = true; }
    // A piece of the document that ends at a line break (or at the document's end).
    void add(std::string_view piece) {
        chunks_.back().text += piece;
        text_bytes_ += piece.size();
        if (chunks_.back().text.size() >= chunk_bytes) next_chunk();
    }
    // A whole document's text, cut at its line breaks.
    void add_document(std::string_view text) {
        begin_document();
        while (!text.empty()) {
            const size_t end = text.find('\n');
            const size_t n = end == std::string_view::npos ? text.size() : end + 1;
            add(text.substr(0, n));
            text.remove_prefix(n);
        }
        end_document();
    }
    void end_document() {
        chunks_.back().eos = true;
        next_chunk();
    }

    // Encodes what is held; at the end, the last round.
    void flush() {
        std::vector<std::vector<int32_t>> encoded(chunks_.size());
        // Encode is const and thread-safe; an exception must not leave an OpenMP region, so the
        // first one is rethrown here.
        std::exception_ptr error;
#pragma omp parallel for schedule(dynamic)
        for (int64_t i = 0; i < static_cast<int64_t>(chunks_.size()); ++i) {
            try {
                encoded[static_cast<size_t>(i)] = tokenizer_.encode(chunks_[static_cast<size_t>(i)].text);
            } catch (...) {
#pragma omp critical
                if (!error) error = std::current_exception();
            }
        }
        if (error) std::rethrow_exception(error);
        for (size_t i = 0; i < chunks_.size(); ++i) {
            if (chunks_[i].bos && tokenizer_.bos() >= 0) shards_.add({tokenizer_.bos()});
            shards_.add(encoded[i]);
            if (chunks_[i].eos && tokenizer_.eos() >= 0) shards_.add({tokenizer_.eos()});
        }
        chunks_.assign(1, Chunk());
        ++rounds_;
    }

    // Bytes of text added so far.
    uint64_t text_bytes() const { return text_bytes_; }
    // Rounds encoded so far: progress shown when it grows follows the encoding, not the reading.
    uint64_t rounds() const { return rounds_; }

private:
    struct Chunk {
        std::string text;
        bool bos = false, eos = false;  // <s> before it, </s> after it
    };
    void next_chunk() {
        if (chunks_.size() == chunks_per_round) flush();
        else chunks_.emplace_back();
    }

    const Tokenizer& tokenizer_;
    ShardWriter& shards_;
    std::vector<Chunk> chunks_;
    uint64_t text_bytes_ = 0;
    uint64_t rounds_ = 0;
};

}  // namespace slm::data
