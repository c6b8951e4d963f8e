"""The built-in demo dataset: a deterministic, believable listening log.

About 2,000 songs by 250 artists in 12 genres, each song with 8 audio-style attributes in
[0, 1]; about 500 users whose taste mixes two or three genres; about 50,000 plays grouped
in sessions. Each session has a mood, a point in attribute space that drifts a little with
every song and is pulled toward what was just played; the next song is often the next track
of the same artist's album (25%), mostly a song that fits the current mood (63%, popular
songs more often), sometimes a jump to another favourite genre or a popular song. The next
song thus depends on the recent ones (several of them reveal the mood better than the last
alone), which gives a sequential model real signal to beat popularity with.

Every play is also logged as played in ``full`` or ``skip``-ped (column ``played``), as a listener
would: a song close to the session's mood, and a song of one of the listener's favourite genres,
is completed more often (:data:`COMPLETION_RULE`). The mood itself is never written out.

The same seed gives byte-identical CSV files.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

FEATURES = (
    "danceability", "energy", "valence", "acousticness",
    "instrumentalness", "speechiness", "liveness", "tempo",
)
#: how far (Euclidean, in attribute space) a song may be from the session's mood and still fit it
MOOD_SCALE = 0.2
#: the rule README describes; :func:`completed` applies it
COMPLETION_RULE = ("P(full) = 0.15 + 0.65 * exp(-gap^2 / (2 * 0.2^2)) + 0.15 * [song's genre is a favourite], at most 0.95; "
                   "gap = distance between the song's attributes and the session's mood when it starts")
#: the events column that records it, and the config that turns it into rewards
REWARD_COLUMN = "played"
REWARD_MAP = {"skip": -1.0, "full": 1.0}
EVENTS_FILE = "events.csv"
ITEMS_FILE = "items.csv"
_START = 1_704_067_200  # 2024-01-01 00:00:00 UTC
_SYL = ("ka", "lo", "mi", "ra", "ven", "tor", "sa", "lu", "ne", "bri", "do", "fa", "zel", "quin", "mo", "tha")
_ADJ = ("Blue", "Silent", "Electric", "Golden", "Broken", "Midnight", "Wild", "Paper", "Velvet", "Neon",
        "Hollow", "Crimson", "Distant", "Quiet", "Burning", "Glass")
_NOUN = ("Heart", "River", "Summer", "Dream", "Machine", "Garden", "Light", "Road", "Ocean", "City",
         "Fire", "Echo", "Shadow", "Season", "Letter", "Sky")


def generate(seed: int = 0, n_users: int = 500, n_items: int = 2000, n_events: int = 50_000,
             n_artists: int = 250, n_genres: int = 12) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(events, items)``: events (user_id, item_id, timestamp, played) and the song table.

    Generated once per process for each set of arguments (a few seconds: the sessions are drawn
    play by play) and handed out as copies, so a caller may change what it gets.
    """
    events, items = _generated(seed, n_users, n_items, n_events, n_artists, n_genres)
    return events.copy(), items.copy()


@functools.lru_cache(maxsize=4)
def _generated(seed: int, n_users: int, n_items: int, n_events: int, n_artists: int,
               n_genres: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    d = len(FEATURES)
    genre_center = rng.uniform(0.15, 0.85, size=(n_genres, d))
    artist_genre = rng.integers(0, n_genres, size=n_artists)
    artist_center = np.clip(genre_center[artist_genre] + rng.normal(0, 0.07, (n_artists, d)), 0, 1)
    # every artist gets at least one song; the rest follow a skewed artist productivity
    extra = rng.choice(n_artists, size=n_items - n_artists, p=_zipf(n_artists, 0.6, rng))
    song_artist = np.sort(np.concatenate([np.arange(n_artists), extra]), kind="stable")
    feats = np.clip(artist_center[song_artist] + rng.normal(0, 0.04, (n_items, d)), 0, 1)
    song_genre = artist_genre[song_artist]
    pop = _zipf(n_items, 0.9, rng)

    # album order: the next track of the same artist (wrapping round the album)
    first = np.searchsorted(song_artist, np.arange(n_artists))
    count = np.bincount(song_artist, minlength=n_artists)
    pos = np.arange(n_items) - first[song_artist]
    next_track = first[song_artist] + (pos + 1) % count[song_artist]

    genre_songs = [np.flatnonzero(song_genre == g) for g in range(n_genres)]
    genre_p = [pop[s] / pop[s].sum() for s in genre_songs]

    activity = rng.lognormal(0, 0.7, n_users)
    per_user = np.maximum(5, np.round(activity / activity.sum() * n_events)).astype(int)
    users, items, times = [], [], []
    mood_gap, liked = [], []  # per play: distance to the session's mood, genre among the listener's favourites
    for u in range(n_users):
        n_fav = rng.integers(2, 4)
        fav = rng.choice(n_genres, size=n_fav, replace=False)
        mix = rng.dirichlet(np.ones(n_fav) * 2)
        t = _START + int(rng.integers(0, 30 * 86400))
        u_items: list[int] = []
        while len(u_items) < per_user[u]:
            g = rng.choice(fav, p=mix)
            song = int(rng.choice(genre_songs[g], p=genre_p[g]))
            # the session's mood: a point in attribute space that drifts a little with every song
            mood = feats[song] + rng.normal(0, 0.03, d)
            for _ in range(int(rng.geometric(1 / 12))):
                u_items.append(song)
                mood_gap.append(float(np.sqrt(((feats[song] - mood) ** 2).sum())))
                liked.append(bool(song_genre[song] in fav))
                times.append(t)
                t += int(rng.integers(150, 300))
                mood = np.clip(mood + rng.normal(0, 0.04, d), 0, 1)
                r = rng.random()
                if r < 0.25:  # album listening: the artist's next track
                    song = int(next_track[song])
                elif r < 0.88:  # a song that fits the mood, popular ones more often
                    cands = genre_songs[g]
                    near = cands[np.argsort(((feats[cands] - mood) ** 2).sum(1), kind="stable")[:25]]
                    w = pop[near] / pop[near].sum()
                    song = int(rng.choice(near, p=w))
                    mood = 0.7 * mood + 0.3 * feats[song]
                elif r < 0.95:  # switch to another favourite genre
                    g = rng.choice(fav, p=mix)
                    song = int(rng.choice(genre_songs[g], p=genre_p[g]))
                    mood = feats[song].copy()
                else:  # whatever is popular
                    song = int(rng.choice(n_items, p=pop))
            t += int(rng.exponential(86400)) + 3600
        users.extend([u + 1] * len(u_items))
        items.extend(u_items)
    events = pd.DataFrame({
        "user_id": np.asarray(users, dtype=np.int64),
        "item_id": np.asarray(items, dtype=np.int64) + 1,
        "timestamp": np.asarray(times, dtype=np.int64),
    })
    events["played"] = np.where(completed(np.asarray(mood_gap), np.asarray(liked), seed), "full", "skip")
    artist_names = np.array([_name(rng, 2) + " " + _name(rng, 3) for _ in range(n_artists)])
    titles = [f"{_ADJ[a]} {_NOUN[b]}" for a, b in rng.integers(0, 16, size=(n_items, 2))]
    items_df = pd.DataFrame({"item_id": np.arange(1, n_items + 1), "title": titles, "artist": artist_names[song_artist]})
    for j, name in enumerate(FEATURES):
        items_df[name] = np.round(feats[:, j], 4)
    return events, items_df


def completed(mood_gap: np.ndarray, liked: np.ndarray, seed: int) -> np.ndarray:
    """Whether each play was listened to the end (True) or skipped (False); see :data:`COMPLETION_RULE`.

    Drawn from a generator of its own (seeded by ``(seed, 16)``) so that the play sequence, which
    the main generator draws, is the same with or without completion flags.
    """
    fit = np.exp(-(mood_gap**2) / (2 * MOOD_SCALE**2))
    p = np.clip(0.15 + 0.65 * fit + 0.15 * liked, 0.0, 0.95)
    return np.random.default_rng([seed, 16]).random(len(p)) < p


def _zipf(n: int, a: float, rng: np.random.Generator) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** a
    w = w[rng.permutation(n)]
    return w / w.sum()


def _name(rng: np.random.Generator, n: int) -> str:
    return "".join(_SYL[i] for i in rng.integers(0, len(_SYL), size=n)).capitalize()


def write(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write ``events.csv`` and ``items.csv`` into ``folder``; return their paths."""
    events, items_df = generate(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ev, it = folder / EVENTS_FILE, folder / ITEMS_FILE
    events.to_csv(ev, index=False, lineterminator="\n")
    items_df.to_csv(it, index=False, float_format="%.4f", lineterminator="\n")
    return ev, it
