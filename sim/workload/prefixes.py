"""Synthetic prompt prefixes: multi-turn sessions and shared system prompts.

A conversation is one stream of tokens — system prompt, user text 1, answer 1,
user text 2, … — and turn ``t``'s prompt is the stream up to the end of user
text ``t``.  The stream is cut into blocks of ``B`` tokens; block ``j`` of a
prompt is named by an id standing for the stream up to the end of the block:

* a full block inside a system prompt: an id of that system prompt, shared by
  every session that uses it;
* any other full block: an id of the session (the same in all its turns);
* the last block of a prompt, when partial: an id of its own (its content ends
  inside text that later turns extend, so no other prompt starts with it).

Ids are unique per generation window (the window's number is part of each
session's and request's id), so windows are generated independently.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from sim.workload.base import Workload, index_ranges
from sim.workload.lengths import length_distribution
from sim.workload.spec import SessionSpec, SystemPromptSpec

IntArray = NDArray[np.int64]

# Id layout (int64, all ≥ 0): a kind in bits 60-61, then its fields.
_SYSTEM, _SESSION, _PARTIAL = 1 << 60, 2 << 60, 3 << 60
_WINDOW_SHIFT = 38  # window number: bits 38-59 (up to 4 M hourly windows)
_SESSION_SHIFT = 22  # session within its window: bits 22-37; block index: bits 0-21
MAX_BLOCKS = 1 << 22
MAX_SESSIONS_PER_WINDOW = 1 << 16


def zipf_weights(count: int, exponent: float) -> NDArray[np.float64]:
    """Probabilities of prompts ``0 .. count−1``, ∝ ``(i + 1)^−exponent``."""
    w = np.arange(1, count + 1, dtype=np.float64) ** -exponent
    return w / w.sum()


def session_workload(
    starts: NDArray[np.float64],
    turns: IntArray,
    duration_s: float,
    window: int,
    block: int,
    sessions: SessionSpec | None,
    system: SystemPromptSpec | None,
    user_tokens: IntArray,
    answer_tokens: IntArray,
    rng: np.random.Generator,
) -> Workload:
    """The requests of sessions starting at ``starts`` (ascending), up to ``duration_s``.

    Session ``i`` has ``turns[i]`` requests (:func:`draw_turns`);
    ``user_tokens`` and ``answer_tokens`` hold one draw per request in
    session order (turn 1 of session 0, turn 2 of session 0, …).  ``rng``
    draws think times and system prompts.
    """
    n_sessions = starts.size
    if n_sessions > MAX_SESSIONS_PER_WINDOW:
        raise ValueError(
            f"{n_sessions} sessions start in one hour: at most {MAX_SESSIONS_PER_WINDOW}"
        )
    n = int(turns.sum())
    owner = np.repeat(np.arange(n_sessions, dtype=np.int64), turns)
    first = np.cumsum(turns) - turns  # index of each session's first turn
    # arrivals: the start, then exponential think times
    gaps = np.zeros(n)
    if sessions is not None and n:
        gaps = rng.standard_exponential(n) * sessions.think_time
        gaps[first] = 0.0
    cum = np.cumsum(gaps)
    arrival = starts[owner] + (cum - cum[first][owner])
    # system prompts
    sys_tokens = np.zeros(n_sessions, np.int64)
    sys_index = np.zeros(n_sessions, np.int64)
    if system is not None:
        sys_index = rng.choice(system.count, size=n_sessions, p=zipf_weights(system.count,
                                                                             system.zipf))
        sys_tokens[:] = system.tokens
    # prompt = system + Σ user text so far + Σ earlier answers
    user_cum = np.cumsum(user_tokens)
    user_before = user_cum - user_tokens
    ans_cum = np.cumsum(answer_tokens)
    ans_before = ans_cum - answer_tokens
    base_user = user_before[first][owner]
    base_ans = ans_before[first][owner]
    prompt = sys_tokens[owner] + (user_cum - base_user) + (ans_before - base_ans)
    keep = arrival < duration_s
    n_blocks = -(-prompt // block)
    if int(n_blocks.max(initial=0)) >= MAX_BLOCKS:
        raise ValueError(f"a prompt of {int(prompt.max())} tokens has too many blocks")
    # block ids
    req = np.repeat(np.arange(n, dtype=np.int64), n_blocks)
    j = index_ranges(np.zeros(n, np.int64), n_blocks)
    end = (j + 1) * block
    s_of = owner[req]
    w = np.int64(window) << _WINDOW_SHIFT
    in_system = end <= sys_tokens[s_of]
    full = end <= prompt[req]
    ids = np.where(
        in_system,
        _SYSTEM | (sys_index[s_of] << _SESSION_SHIFT) | j,
        np.where(full, _SESSION | w | (s_of << _SESSION_SHIFT) | j, _PARTIAL | w | req),
    ).astype(np.int64)
    session = (np.int64(window) << 32) | owner
    order = np.flatnonzero(keep)
    order = order[np.argsort(arrival[order], kind="stable")]
    everything = Workload(arrival, prompt, answer_tokens, n_blocks, ids,
                          session if sessions is not None else None, block)
    return everything.take(order)


def draw_turns(sessions: SessionSpec | None, n_sessions: int, rng: np.random.Generator
               ) -> IntArray:
    """Turns of each of ``n_sessions`` sessions (1 each without a session model)."""
    if sessions is None:
        return np.ones(n_sessions, np.int64)
    return length_distribution(sessions.turns).sample(rng, n_sessions)


def reusable_tokens(w: Workload) -> int:
    """Prompt tokens an unbounded cache could serve, counted from the ids alone.

    For each request in arrival order: the longest run of its leading block
    ids that earlier requests carried, times the block size, capped one token
    short of its prompt (the last token is always computed).  An upper bound
    of what any replica's cache serves; with one replica, a cache that
    forgets nothing and each prompt prefilled before the next arrives, the
    engine serves exactly this.  0 without prefix information.
    """
    if w.block_ids is None:
        return 0
    off = w.block_offsets.tolist()
    ids = w.block_ids.tolist()
    prompts = w.input_tokens.tolist()
    seen: set[int] = set()
    total = 0
    for i, prompt in enumerate(prompts):
        chain = ids[off[i] : off[i + 1]]
        k = 0
        while k < len(chain) and chain[k] in seen:
            k += 1
        total += min(k * w.block_tokens, prompt - 1)
        seen.update(chain)
    return total
