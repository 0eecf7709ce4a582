"""The trained captioner's network: motion tokens + retrieved context -> caption words (docs/captioning.md).

A small encoder-decoder transformer in the spirit of TM2T (Guo et al. 2022: motion tokens in, words out) with
the retrieval context of ReMoGPT (motion-to-text and motion-to-motion neighbours from a database, given to the
model beside the motion):

* **motion**: the frozen tokenizer's base-layer grid (n, J') of the motion (n <= 49 rows of 4 frames, J' = 7
  columns: 6 joint groups + the 1D branch, docs/design.md §3, §4.8). One encoder token per row: the sum of
  one embedding per (column, code) pair, plus a row position and a segment embedding.
* **retrieved motion** (m2m): the token grid of the nearest database motion, embedded the same way with its
  own segment embedding.
* **retrieved caption** (m2t): the words of the nearest database caption, word embedding (shared with the
  decoder) + position + segment.

The encoder runs over the concatenation (<= 49 + 49 + 32 tokens); the decoder is causal over the caption and
cross-attends to it; the output layer is tied to the word embedding. **Dropping the retrieval** masks the
retrieved tokens out of the encoder (key padding), so the model sees the motion alone: training drops the
context of a random share of the samples (``context_dropout``) and decoding with ``retrieval=False`` is the
"without retrieval" variant (docs/captioning.md).

Shapes: B batch, n motion rows, m retrieved rows, J' columns, L caption tokens, W context words, d ``dim``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from .vocab import BOS, EOS, PAD

__all__ = ["CaptionerConfig", "CaptionTransformer"]


@dataclass
class CaptionerConfig:
    """Sizes of :class:`CaptionTransformer` (the ``model`` record of ``config.json``).

    Attributes:
        vocab_size: words incl. the 4 specials. num_codes: codes per tokenizer column (256).
        num_columns: J', tokenizer columns (7 with the 1D branch). max_rows: longest grid (49 = 196 frames / 4).
        max_words: longest caption in tokens incl. ``<bos>`` / ``<eos>``. context_words: longest retrieved caption.
        dim: model width d. heads: attention heads. enc_layers, dec_layers: transformer layers.
        ff_mult: feed-forward width = ff_mult * d. dropout: dropout of every layer.
    """

    vocab_size: int
    num_codes: int = 256
    num_columns: int = 7
    max_rows: int = 49
    max_words: int = 32
    context_words: int = 32
    dim: int = 160
    heads: int = 4
    enc_layers: int = 2
    dec_layers: int = 2
    ff_mult: int = 3
    dropout: float = 0.1

    def to_dict(self) -> dict:
        """The fields as a JSON-friendly dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "CaptionerConfig":
        """Build from a dict; unknown keys raise ``TypeError`` (a config of another model)."""
        known = {f.name for f in fields(cls)}
        extra = set(data) - known
        if extra:
            raise TypeError(f"unknown captioner config fields {sorted(extra)}")
        return cls(**data)


class CaptionTransformer(nn.Module):
    """Encoder-decoder captioner over motion tokens and a retrieved caption / motion (module docstring).

    Args:
        config: :class:`CaptionerConfig`.

    Source: TM2T (motion tokens -> text with a transformer), ReMoGPT (m2t and m2m retrieval context).
    """

    def __init__(self, config: CaptionerConfig) -> None:
        super().__init__()
        self.config = c = config
        d = c.dim
        self.code_emb = nn.Embedding(c.num_columns * c.num_codes + 1, d, padding_idx=c.num_columns * c.num_codes)
        self.row_pos = nn.Embedding(c.max_rows, d)
        self.word_emb = nn.Embedding(c.vocab_size, d, padding_idx=PAD)
        self.word_pos = nn.Embedding(max(c.max_words, c.context_words), d)
        self.segment = nn.Embedding(3, d)  # 0 motion, 1 retrieved motion, 2 retrieved caption
        enc = nn.TransformerEncoderLayer(d, c.heads, c.ff_mult * d, c.dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(enc, c.enc_layers, norm=nn.LayerNorm(d), enable_nested_tensor=False)
        dec = nn.TransformerDecoderLayer(d, c.heads, c.ff_mult * d, c.dropout, batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(dec, c.dec_layers, norm=nn.LayerNorm(d))
        self.drop = nn.Dropout(c.dropout)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
            if isinstance(m, nn.Embedding) and m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()

    # -- encoder ---------------------------------------------------------------------------------------------
    def _rows(self, grid: torch.Tensor, segment: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Token grid (B, n, J') long (-1 = padding) -> row tokens (B, n, d) and valid rows (B, n) bool."""
        c = self.config
        grid = grid[:, : c.max_rows]
        valid = (grid >= 0).all(-1)  # (B, n)
        col = torch.arange(grid.shape[-1], device=grid.device) * c.num_codes  # (J',)
        ids = torch.where(grid >= 0, grid.clamp(0, c.num_codes - 1) + col, torch.full_like(grid, c.num_columns *
                                                                                             c.num_codes))
        x = self.code_emb(ids).sum(2)  # (B, n, J', d) -> (B, n, d)
        pos = torch.arange(grid.shape[1], device=grid.device)
        return x + self.row_pos(pos)[None] + self.segment.weight[segment], valid

    def encode(self, motion: torch.Tensor, ret_motion: torch.Tensor | None = None,
               ret_words: torch.Tensor | None = None, use_retrieval: torch.Tensor | bool = True
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder memory of a batch.

        Args:
            motion: (B, n, J') long base-layer ids of the motions, -1 after each grid's rows (>= 1 valid row).
            ret_motion: (B, m, J') long ids of the retrieved motions (-1 padding), or None.
            ret_words: (B, W) long word ids of the retrieved captions (PAD = 0 padding), or None.
            use_retrieval: True / False for the batch, or (B,) bool per sample; False masks the retrieved
                tokens out (the "without retrieval" path).

        Returns:
            ``(memory (B, S, d), padding (B, S) bool, True = ignored)`` with S = n + m + W.
        """
        x, valid = self._rows(motion, 0)
        parts, pads = [x], [~valid]
        B = motion.shape[0]
        keep = torch.as_tensor(use_retrieval, dtype=torch.bool, device=motion.device).expand(B)
        if ret_motion is not None:
            r, rv = self._rows(ret_motion, 1)
            parts.append(r)
            pads.append(~rv | ~keep[:, None])
        if ret_words is not None:
            w = ret_words[:, : self.config.context_words]
            pos = torch.arange(w.shape[1], device=w.device)
            parts.append(self.word_emb(w) + self.word_pos(pos)[None] + self.segment.weight[2])
            pads.append((w == PAD) | ~keep[:, None])
        src, pad = torch.cat(parts, 1), torch.cat(pads, 1)
        return self.encoder(self.drop(src), src_key_padding_mask=pad), pad

    # -- decoder ---------------------------------------------------------------------------------------------
    def logits(self, memory: torch.Tensor, memory_pad: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
        """Next-word logits (B, L, V) for word ids (B, L) (``<bos>`` first, PAD after the end), causal."""
        L = words.shape[1]
        pos = torch.arange(L, device=words.device)
        y = self.drop(self.word_emb(words) + self.word_pos(pos)[None])
        causal = torch.triu(torch.ones(L, L, dtype=torch.bool, device=words.device), 1)
        h = self.decoder(y, memory, tgt_mask=causal, tgt_key_padding_mask=words == PAD,
                         memory_key_padding_mask=memory_pad, tgt_is_causal=True)
        return h @ self.word_emb.weight.T  # tied output layer

    def forward(self, motion, ret_motion, ret_words, words, use_retrieval=True) -> torch.Tensor:
        """Teacher-forced logits (B, L, V) of ``words`` (B, L) given the inputs of :meth:`encode`."""
        memory, pad = self.encode(motion, ret_motion, ret_words, use_retrieval)
        return self.logits(memory, pad, words)

    def loss(self, motion, ret_motion, ret_words, caption, use_retrieval=True, label_smoothing: float = 0.0):
        """Mean cross-entropy (nats per word) of ``caption`` (B, L) ids (``<bos>`` ... ``<eos>``, PAD after)."""
        logits = self(motion, ret_motion, ret_words, caption[:, :-1], use_retrieval)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), caption[:, 1:].reshape(-1), ignore_index=PAD,
                               label_smoothing=label_smoothing)

    @torch.no_grad()
    def sequence_logprob(self, memory, memory_pad, caption: torch.Tensor) -> torch.Tensor:
        """Sum of log p(word) over each caption (B,) (``<bos>`` ... ``<eos>`` ids, PAD after), the quantity
        greedy and beam search maximise."""
        logp = self.logits(memory, memory_pad, caption[:, :-1]).log_softmax(-1)
        tgt = caption[:, 1:]
        tok = logp.gather(-1, tgt.clamp_min(0)[..., None])[..., 0]
        return (tok * (tgt != PAD)).sum(1)

    @torch.no_grad()
    def greedy(self, memory, memory_pad, max_words: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy decoding: ``(ids (B, L) with <bos> first and PAD after <eos>, log-probability (B,))``."""
        B, dev = memory.shape[0], memory.device
        L = max_words or self.config.max_words
        seq = torch.full((B, 1), BOS, dtype=torch.long, device=dev)
        score = torch.zeros(B, device=dev)
        done = torch.zeros(B, dtype=torch.bool, device=dev)
        for _ in range(L - 1):
            logp = self.logits(memory, memory_pad, seq)[:, -1].log_softmax(-1)
            logp[:, PAD] = -torch.inf
            best, nxt = logp.max(-1)
            nxt = torch.where(done, torch.full_like(nxt, PAD), nxt)
            score = score + torch.where(done, torch.zeros_like(best), best)
            seq = torch.cat([seq, nxt[:, None]], 1)
            done |= nxt == EOS
            if done.all():
                break
        return seq, score

    @torch.no_grad()
    def beam(self, memory, memory_pad, beam: int = 3, max_words: int | None = None,
             length_penalty: float = 0.0) -> tuple[list[list[int]], torch.Tensor]:
        """Beam search over the sum of word log-probabilities (``/ len ** length_penalty`` when > 0).

        Args:
            memory, memory_pad: (B, S, d), (B, S) from :meth:`encode`.
            beam: hypotheses kept per motion (>= 1). max_words: longest caption incl. markers.
            length_penalty: 0 (default) ranks by likelihood alone.

        Returns:
            ``(B id lists (<bos> ... <eos>), log-probabilities (B,))``. With ``length_penalty == 0`` the greedy
            sentence is always among the candidates, so the result is at least as likely as greedy's.
        """
        B, S, d = memory.shape
        dev, K = memory.device, max(1, int(beam))
        L = max_words or self.config.max_words
        mem = memory[:, None].expand(B, K, S, d).reshape(B * K, S, d)
        mpad = memory_pad[:, None].expand(B, K, S).reshape(B * K, S)
        seq = torch.full((B * K, 1), BOS, dtype=torch.long, device=dev)
        score = torch.full((B, K), -torch.inf, device=dev)
        score[:, 0] = 0.0  # one live hypothesis at the start
        finished: list[list[tuple[float, float, list[int]]]] = [[] for _ in range(B)]

        def rank(s: float, n: int) -> float:
            return s / (n ** length_penalty) if length_penalty > 0 else s

        for t in range(L - 1):
            logp = self.logits(mem, mpad, seq)[:, -1].log_softmax(-1)  # (B*K, V)
            logp[:, PAD] = -torch.inf
            if t == L - 2:  # last position: only <eos> may follow
                keep_eos = logp[:, EOS].clone()
                logp.fill_(-torch.inf)
                logp[:, EOS] = keep_eos
            V = logp.shape[-1]
            cand = (score.reshape(B * K, 1) + logp).reshape(B, K * V)
            top, idx = cand.topk(2 * K, dim=1)  # (B, 2K): room for hypotheses that end here
            src, word = idx // V, idx % V
            new_seq, new_score = [], torch.full((B, K), -torch.inf, device=dev)
            for b in range(B):
                kept = 0
                for j in range(2 * K):
                    s = float(top[b, j])
                    if s == -float("inf"):
                        break
                    prev = seq[b * K + int(src[b, j])]
                    if int(word[b, j]) == EOS:
                        ids = prev.tolist() + [EOS]
                        finished[b].append((rank(s, len(ids) - 1), s, ids))
                        continue
                    if kept < K:
                        new_seq.append(torch.cat([prev, word[b, j: j + 1]]))
                        new_score[b, kept] = s
                        kept += 1
                while kept < K:  # pad the beam with dead hypotheses
                    new_seq.append(torch.cat([seq[b * K], torch.tensor([PAD], device=dev)]))
                    kept += 1
            seq, score = torch.stack(new_seq), new_score
            best_live = score.max(1).values
            if all(len(f) >= K and max(x[0] for x in f) >= rank(float(best_live[b]), t + 2) and length_penalty == 0
                   for b, f in enumerate(finished)):
                break  # no live hypothesis can beat a finished one (scores only fall)
        if length_penalty == 0:
            g_ids, g_score = self.greedy(memory, memory_pad, L)
            for b in range(B):
                ids = [i for i in g_ids[b].tolist() if i != PAD]
                finished[b].append((float(g_score[b]), float(g_score[b]), ids))
        out, scores = [], torch.zeros(B)
        for b in range(B):
            best = max(finished[b], key=lambda x: x[0]) if finished[b] else (0.0, 0.0, [BOS, EOS])
            out.append(best[2])
            scores[b] = best[1]
        return out, scores
