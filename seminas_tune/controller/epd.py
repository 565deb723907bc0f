"""The encoder-predictor-decoder (EPD) controller of NAO / SemiNAS, generic over spaces.

Encoder: token embedding (plus, optionally, a position embedding) -> bidirectional LSTM
(hidden/2 per direction) plus a residual from the embedding; token states are L2-normalised,
the architecture embedding is the normalised mean of the token states. Predictor: MLP with a
residual on the embedding; ``heads > 1`` gives an ensemble of such MLPs on the shared embedding
(a cheap uncertainty estimate: their spread), whose mean is the prediction that gradient ascent
follows. Decoder: LSTM initialised with (embedding, embedding), dot-product attention over the
token states, teacher forcing in training, greedy decoding restricted to each position's
allowed tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from seminas_tune._checks import check_bool, check_int, check_number


@dataclass
class EPDConfig:
    """Model sizes (reference: hidden 64, one LSTM layer, predictor hidden 64). ``positional``
    adds a learned embedding of each token's position to its token embedding (not in the
    paper), so that the mean of the token states still says which position holds what."""

    hidden: int = 64
    mlp_hidden: int = 64
    dropout: float = 0.1
    positional: bool = False

    def __post_init__(self):
        check_int("hidden", self.hidden)
        check_int("mlp_hidden", self.mlp_hidden)
        check_number("dropout", self.dropout, 0.0, 1.0)
        check_bool("positional", self.positional)


class _Head(nn.Module):
    """One predictor MLP (the extra members of an ensemble; the first is the EPD's own layers)."""

    def __init__(self, hidden: int, mlp_hidden: int):
        super().__init__()
        self.mlp_in = nn.Linear(hidden, mlp_hidden)
        self.mlp_mid = nn.Linear(mlp_hidden, mlp_hidden)
        self.mlp_out = nn.Linear(mlp_hidden, 1)


class EPD(nn.Module):
    """Encoder-predictor-decoder over fixed-length token sequences.

    Args:
        vocab_size: tokens, padding (0) included; 0 also serves as the decoder's start token.
        token_mask: bool ``seq_len x vocab_size`` mask of tokens allowed at each position.
        heads: predictor MLPs on the shared embedding (1: the paper's single predictor).
    """

    def __init__(self, vocab_size: int, token_mask: torch.Tensor, cfg: EPDConfig | None = None, heads: int = 1):
        super().__init__()
        cfg = cfg or EPDConfig()
        h = cfg.hidden
        self.cfg = cfg
        self.register_buffer("mask", torch.as_tensor(token_mask, dtype=torch.bool))
        self.embed = nn.Embedding(vocab_size, h)
        self.position = nn.Embedding(self.mask.shape[0], h) if cfg.positional else None
        self.encoder = nn.LSTM(h, h // 2, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(cfg.dropout)
        self.mlp_in = nn.Linear(h, cfg.mlp_hidden)
        self.mlp_mid = nn.Linear(cfg.mlp_hidden, cfg.mlp_hidden)
        self.mlp_out = nn.Linear(cfg.mlp_hidden, 1)
        self.extra_heads = nn.ModuleList(_Head(h, cfg.mlp_hidden) for _ in range(heads - 1))
        self.dec_embed = nn.Embedding(vocab_size, h)
        self.decoder = nn.LSTM(h, h, batch_first=True)
        self.attn_out = nn.Linear(2 * h, h)
        self.out = nn.Linear(h, vocab_size)

    # -- encoder and predictor -----------------------------------------------------------
    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token states, ``B x T x hidden``, L2-normalised."""
        x = self.embed(tokens)
        if self.position is not None:
            x = x + self.position.weight[: tokens.shape[1]]
        y, _ = self.encoder(self.drop(x))
        return F.normalize(y + x, dim=-1)

    @staticmethod
    def pool(states: torch.Tensor) -> torch.Tensor:
        return F.normalize(states.mean(dim=1), dim=-1)

    def heads_from_states(self, states: torch.Tensor) -> torch.Tensor:
        """Every head's prediction, ``B x heads``."""
        e = self.drop(self.pool(states))
        out = []
        for head in (self, *self.extra_heads):
            z = F.relu(head.mlp_in(e))
            z = z + F.relu(head.mlp_mid(self.drop(z)))
            out.append(head.mlp_out(z))
        return torch.cat(out, dim=-1)

    def predict_from_states(self, states: torch.Tensor) -> torch.Tensor:
        """The heads' mean prediction, ``B``."""
        return self.heads_from_states(states).mean(dim=-1)

    def predict(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.predict_from_states(self.encode(tokens))

    def predict_heads(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.heads_from_states(self.encode(tokens))

    # -- decoder -------------------------------------------------------------------------
    def _step(self, inp: torch.Tensor, state, states: torch.Tensor, positions: slice) -> tuple:
        y, state = self.decoder(self.dec_embed(inp), state)
        att = torch.softmax(torch.bmm(y, states.transpose(1, 2)), dim=-1)
        ctx = torch.bmm(att, states)
        logits = self.out(torch.tanh(self.attn_out(torch.cat([y, ctx], dim=-1))))
        logits = logits.masked_fill(~self.mask[positions], float("-inf"))
        return logits, state

    def _init_state(self, states: torch.Tensor):
        e = self.pool(states).unsqueeze(0).contiguous()
        return e, e

    def reconstruct_logits(self, tokens: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits ``B x T x vocab`` (start token 0, then the shifted input)."""
        inp = torch.cat([torch.zeros_like(tokens[:, :1]), tokens[:, :-1]], dim=1)
        logits, _ = self._step(inp, self._init_state(states), states, slice(0, tokens.shape[1]))
        return logits

    @torch.no_grad()
    def greedy_decode(self, states: torch.Tensor) -> torch.Tensor:
        """Greedy constrained decoding of token states into ``B x T`` token ids."""
        b, t = states.shape[0], self.mask.shape[0]
        state = self._init_state(states)
        inp = torch.zeros(b, 1, dtype=torch.long, device=states.device)
        out = []
        for p in range(t):
            logits, state = self._step(inp, state, states, slice(p, p + 1))
            inp = logits.argmax(dim=-1)
            out.append(inp)
        return torch.cat(out, dim=1)

    def loss(
        self,
        tokens: torch.Tensor,
        targets: torch.Tensor,
        trade_off: float = 0.8,
        rank_weight: float = 0.0,
        recon_fraction: float = 1.0,
        weights: torch.Tensor | None = None,
    ) -> tuple:
        """Joint loss ``trade_off * (MSE + rank_weight * ranking) + (1 - trade_off) * NLL``;
        returns (loss, mse, nll).

        ``targets`` is ``B`` (one target for every head) or ``B x heads``; ``weights``
        (``B x heads``, default 1) weighs each sample per head (the ensemble's bootstrap).
        ``ranking`` is a pairwise logistic loss over the batch (each pair ordered as its
        targets, weighted by the product of the pair's weights). The reconstruction NLL is taken
        on the first ``recon_fraction`` of the batch only (the decoder is half the cost of a
        step; batches are shuffled).
        """
        states = self.encode(tokens)
        pred = self.heads_from_states(states)
        targets = targets[:, None].expand_as(pred) if targets.dim() == 1 else targets
        w = torch.ones_like(pred) if weights is None else weights
        mse = (w * (pred - targets) ** 2).sum() / w.sum().clamp(min=1e-8)
        reg = mse
        if rank_weight > 0:
            sign = torch.sign(targets[:, None, :] - targets[None, :, :])
            pair = w[:, None, :] * w[None, :, :] * sign.abs()
            reg = reg + rank_weight * (
                F.softplus(-sign * (pred[:, None, :] - pred[None, :, :])) * pair
            ).sum() / pair.sum().clamp(min=1)
        r = max(1, int(round(recon_fraction * tokens.shape[0])))
        logits = self.reconstruct_logits(tokens[:r], states[:r])
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:r].reshape(-1))
        return trade_off * reg + (1 - trade_off) * nll, mse, nll
