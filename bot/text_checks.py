"""Evidence beyond the embedding: what the two posts' texts say about their animal.

When both texts state the sex, or a solid coat colour, and they disagree (`text`'s
`attribute_contradictions`), the pair is not commented on automatically: its confidence is
lowered and the contradiction is named in the reasons, so the pair can still reach the review
desk, where a person reads both posts. No real pairs of texts about one animal exist offline,
so the rule is tested on written pairs (tests/text/test_contradictions.py,
tests/bot/test_text_checks.py); it only ever takes a comment away, never adds one.
"""

from __future__ import annotations

from datetime import datetime

from index.matching import PostCandidate
from text import PostLabel, attribute_contradictions, classify_post

__all__ = ["CONTRADICTION_FACTOR", "check_texts"]

#: A contradicted pair keeps this share of its confidence (and is never accepted).
CONTRADICTION_FACTOR = 0.5


def check_texts(
    candidate: PostCandidate, query: PostLabel, other_text: str, *, now: datetime
) -> PostCandidate:
    """`candidate` unchanged when the texts agree or say nothing; otherwise not accepted, with
    a lower confidence and the contradiction in its reasons. `query` is the query post's text
    read once (`classify_post`) for all its candidates."""
    found = attribute_contradictions(query, classify_post(other_text, now=now))
    if not found:
        return candidate
    reasons = [
        f"{reason}: confidence ×{CONTRADICTION_FACTOR:g}, not commented automatically"
        for reason in found
    ]
    return candidate.model_copy(
        update={
            "confidence": candidate.confidence * CONTRADICTION_FACTOR,
            "accepted": False,
            "reasons": (*candidate.reasons, *reasons),
        }
    )
