// The deterministic backward's schedule (include/slm/cuda/attention/flash_turns.cuh and the grid
// order of flash_common.cuh), played on the host: no GPU needed, so these cases run in CI.
//
// The simulation puts CTAs on a number of SM slots in launch order, as the GPU does, and lets
// each resident CTA walk its steps (key_tile_at, KeyTile::head and row, with the scheme's grid
// order and walk: the kernel's own functions): at a step it waits until its query tile's counter
// reads its turn (key_tile_turn), adds, and passes the turn on only when it begins its next step
// (or ends), as the kernel does after its next barrier. A round in which no CTA moves is a
// deadlock. Checked, for both schemes (Turns::diagonal_down, Turns::tile_0_up): every (sequence,
// head, query tile) gets the adds of exactly the key tiles that reach it, in the scheme's order.
// The same play with the other scheme's turns, or with the grid launched in reverse, must
// deadlock on one slot: the simulation can tell.
#include <doctest/doctest.h>

#include <cstdint>
#include <deque>
#include <map>
#include <tuple>
#include <vector>

#include "slm/cuda/attention/flash_common.cuh"
#include "slm/cuda/attention/flash_turns.cuh"

namespace {

using slm::attention::cuda_flash::key_tile_at;
using slm::attention::cuda_flash::key_tile_turn;
using slm::attention::cuda_flash::Problem;
using slm::attention::cuda_flash::Turns;
using slm::attention::cuda_flash::turn_of;
using slm::attention::cuda_flash::work_item_at;

Problem problem(int batch, int seq, int heads, int kv_heads) {
    Problem p{};
    p.batch = batch;
    p.seq = seq;
    p.heads = heads;
    p.kv_heads = kv_heads;
    p.group = heads / kv_heads;
    return p;
}

struct Play {
    bool deadlocked = false;
    std::map<int64_t, std::vector<int>> adds;  // counter → key tiles in the order they added
};

// One CTA on a slot: its rank, its next step, and the counter whose turn it still holds.
struct Resident {
    int rank, step = 0;
    int64_t holding = -1;
    int next_turn = 0;
};

constexpr Turns other(Turns t) {
    return t == Turns::tile_0_up ? Turns::diagonal_down : Turns::tile_0_up;
}

template <int BlockN, int BlockM, Turns T>
Play play(const Problem& p, int slots, bool reverse_launch, bool other_turns) {
    using slm::attention::cuda_flash::launches_late_first;
    using slm::attention::cuda_flash::walks_up;
    const int k_tiles = (p.seq + BlockN - 1) / BlockN;
    const int grid = k_tiles * p.batch * p.kv_heads;
    std::vector<int> counter((p.seq + BlockM - 1) / BlockM * p.batch * p.heads, 0);
    Play result;
    std::deque<Resident> resident;
    int launched = 0;
    while (launched < grid || !resident.empty()) {
        while (static_cast<int>(resident.size()) < slots && launched < grid)
            resident.push_back({launched++});
        bool moved = false;
        for (auto it = resident.begin(); it != resident.end();) {
            const int rank = reverse_launch ? grid - 1 - it->rank : it->rank;
            const auto tile =
                key_tile_at<64, BlockN, BlockM, walks_up<T>>(rank, p, launches_late_first<T>);
            if (it->holding >= 0) {  // the barrier after the previous step's adds: hand on
                counter[it->holding] = it->next_turn;
                it->holding = -1;
                moved = true;
            }
            if (it->step == tile.n_steps) {
                it = resident.erase(it);
                moved = true;
                continue;
            }
            const int h = tile.head(it->step, p), i0 = tile.row(it->step, p);
            const int64_t c = turn_of(tile.b, h, i0, BlockM, p);
            const int kt = tile.j0 / BlockN;
            const int turn = other_turns ? key_tile_turn<other(T)>(i0, tile.j0, BlockN)
                                         : key_tile_turn<T>(i0, tile.j0, BlockN);
            if (counter[c] == turn) {
                result.adds[c].push_back(kt);
                it->holding = c;
                it->next_turn = turn + 1;
                ++it->step;
                moved = true;
            }
            ++it;
        }
        if (!moved) {
            result.deadlocked = true;
            return result;
        }
    }
    return result;
}

template <int BlockN, int BlockM, Turns T>
void check_play(const Problem& p, int slots) {
    CAPTURE(T == Turns::tile_0_up);
    CAPTURE(BlockN);
    CAPTURE(BlockM);
    CAPTURE(p.batch);
    CAPTURE(p.seq);
    CAPTURE(p.heads);
    CAPTURE(p.kv_heads);
    CAPTURE(slots);
    const Play played =
        play<BlockN, BlockM, T>(p, slots, /*reverse_launch=*/false, /*other_turns=*/false);
    REQUIRE_FALSE(played.deadlocked);
    const int q_tiles = (p.seq + BlockM - 1) / BlockM;
    CHECK(static_cast<int>(played.adds.size()) == p.batch * p.heads * q_tiles);
    for (int b = 0; b < p.batch; ++b)
        for (int h = 0; h < p.heads; ++h)
            for (int qt = 0; qt < q_tiles; ++qt) {
                const int i0 = qt * BlockM;
                std::vector<int> expected;  // the key tiles that reach the query tile, in turn
                for (int kt = 0; kt <= i0 / BlockN; ++kt)
                    expected.push_back(T == Turns::tile_0_up ? kt : i0 / BlockN - kt);
                const auto found = played.adds.find(turn_of(b, h, i0, BlockM, p));
                REQUIRE(found != played.adds.end());
                CHECK(found->second == expected);
            }
}

const std::vector<Problem> problems = {
    problem(1, 1, 2, 2),      problem(2, 100, 4, 2),   problem(1, 300, 4, 1),
    problem(3, 1000, 6, 2),   problem(2, 2048, 8, 4),  problem(1, 4096, 16, 16),
};

}  // namespace

TEST_CASE("flash deterministic backward (host): turns in a fixed order, without deadlock, both schemes") {
    for (const Problem& p : problems)
        for (int slots : {1, 2, 7, 132}) {
            check_play<128, 128, Turns::diagonal_down>(p, slots);  // tiles 64 wide
            check_play<128, 64, Turns::diagonal_down>(p, slots);   // tiles 128 wide
            check_play<64, 64, Turns::diagonal_down>(p, slots);    // tiles 256 wide
            check_play<128, 128, Turns::tile_0_up>(p, slots);
            check_play<128, 64, Turns::tile_0_up>(p, slots);
            check_play<64, 64, Turns::tile_0_up>(p, slots);
        }
}

TEST_CASE("flash deterministic backward (host): the simulation sees a deadlock") {
    const Problem p = problem(1, 1000, 4, 2);
    for (const bool up : {false, true}) {
        CAPTURE(up);
        auto play_it = [&](bool reverse_launch, bool other_turns) {
            return up ? play<128, 64, Turns::tile_0_up>(p, 1, reverse_launch, other_turns)
                      : play<128, 64, Turns::diagonal_down>(p, 1, reverse_launch, other_turns);
        };
        CHECK(play_it(/*reverse_launch=*/false, /*other_turns=*/true).deadlocked);
        CHECK(play_it(/*reverse_launch=*/true, /*other_turns=*/false).deadlocked);
        CHECK_FALSE(play_it(/*reverse_launch=*/false, /*other_turns=*/false).deadlocked);
    }
}

TEST_CASE("flash grid order (host): each work item once, each unit's tiles in launch order") {
    for (const auto& [units, tiles] : std::vector<std::pair<int, int>>{
             {1, 1}, {3, 1}, {64, 16}, {7, 300}, {300, 7}, {1000, 2}, {33, 8}})
        for (bool late_first : {false, true}) {
            CAPTURE(units);
            CAPTURE(tiles);
            CAPTURE(late_first);
            std::map<std::pair<int, int>, int> seen;
            std::vector<int> last(units, -1);
            bool ordered = true;
            for (int rank = 0; rank < units * tiles; ++rank) {
                const auto item = work_item_at(rank, units, tiles, late_first);
                REQUIRE(item.unit >= 0);
                REQUIRE(item.unit < units);
                REQUIRE(item.tile >= 0);
                REQUIRE(item.tile < tiles);
                ++seen[{item.unit, item.tile}];
                // late_first: tiles − 1 down to 0; else 0 up.
                const int order = late_first ? tiles - 1 - item.tile : item.tile;
                ordered = ordered && order == last[item.unit] + 1;
                last[item.unit] = order;
            }
            CHECK(static_cast<int>(seen.size()) == units * tiles);
            CHECK(ordered);
        }
}
