# SPDX-License-Identifier: GPL-3.0-or-later
"""Recurrent networks mapping sequences of radar drop-size spectra to the rain rate at the ground.

Every network takes features of shape (batch, sequence, features), oldest time step first, and returns the rain
rate of shape (batch,) in mm/h through a softplus, so the output is always positive. The first LSTM layer is kept
apart (:meth:`SequenceRegressor.first_layer_parameters`) so that a trainer can give it its own learning rate and
epoch budget, as the LSTM-Attention-LSTM of the source paper does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SequenceRegressor(nn.Module):
    """Common part of the networks: the first LSTM layer, dropout on its output and a softplus head.

    Args:
        n_features: Features per time step.
        hidden1: Units of the first LSTM layer.
        head_inputs: Size of the vector the head maps to the rain rate.
        dropout: Dropout probability on the first layer's output.
    """

    def __init__(self, n_features: int, hidden1: int, head_inputs: int, dropout: float) -> None:
        super().__init__()
        self.lstm1 = nn.LSTM(n_features, hidden1, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(head_inputs, 1)

    def first_layer_parameters(self) -> list[nn.Parameter]:
        """Parameters of the first LSTM layer."""
        return list(self.lstm1.parameters())

    def other_parameters(self) -> list[nn.Parameter]:
        """Parameters of everything after the first LSTM layer (attention, second layer, head)."""
        first = {id(parameter) for parameter in self.first_layer_parameters()}
        return [parameter for parameter in self.parameters() if id(parameter) not in first]

    def first_layer(self, x: torch.Tensor) -> torch.Tensor:
        """Output sequence of the first LSTM layer after dropout, (batch, sequence, hidden1)."""
        return self.dropout(self.lstm1(x)[0])

    def rate(self, state: torch.Tensor) -> torch.Tensor:
        """Rain rate in mm/h, ``softplus(head(state))``, of shape (batch,)."""
        return F.softplus(self.head(state)).squeeze(-1)


class LSTMRegressor(SequenceRegressor):
    """One LSTM layer, dropout on its last hidden state, a linear head (the single-LSTM baseline)."""

    def __init__(self, n_features: int, hidden1: int = 256, dropout: float = 0.2) -> None:
        super().__init__(n_features, hidden1, hidden1, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rain rate (batch,) in mm/h of input (batch, sequence, features)."""
        return self.rate(self.first_layer(x)[:, -1])


class DoubleLSTMRegressor(SequenceRegressor):
    """Two stacked LSTM layers with dropout between them and a linear head (the double-LSTM baseline)."""

    def __init__(self, n_features: int, hidden1: int = 256, hidden2: int = 128, dropout: float = 0.2) -> None:
        super().__init__(n_features, hidden1, hidden2, dropout)
        self.lstm2 = nn.LSTM(hidden1, hidden2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rain rate (batch,) in mm/h of input (batch, sequence, features)."""
        return self.rate(self.lstm2(self.first_layer(x))[0][:, -1])


class SequenceAttention(nn.Module):
    """Single-head scaled dot-product self-attention over the time steps, with a residual connection.

    Every time step attends to every other one: ``x + softmax(q k^T / sqrt(d)) v`` with learned linear query, key
    and value projections.

    Args:
        size: Features per time step (in and out).
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.query = nn.Linear(size, size)
        self.key = nn.Linear(size, size)
        self.value = nn.Linear(size, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attended sequence of the same shape as ``x`` (batch, sequence, size)."""
        return x + F.scaled_dot_product_attention(self.query(x), self.key(x), self.value(x))


class LSTMAttentionLSTM(SequenceRegressor):
    """LSTM, dropout, self-attention over the first layer's output sequence, LSTM, head on its last hidden state."""

    def __init__(self, n_features: int, hidden1: int = 256, hidden2: int = 128, dropout: float = 0.2) -> None:
        super().__init__(n_features, hidden1, hidden2, dropout)
        self.attention = SequenceAttention(hidden1)
        self.lstm2 = nn.LSTM(hidden1, hidden2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rain rate (batch,) in mm/h of input (batch, sequence, features)."""
        return self.rate(self.lstm2(self.attention(self.first_layer(x)))[0][:, -1])


#: The networks by kind.
NETWORKS: dict[str, type[SequenceRegressor]] = {
    "lstm": LSTMRegressor,
    "double_lstm": DoubleLSTMRegressor,
    "lstm_attention_lstm": LSTMAttentionLSTM,
}


def build_network(kind: str, n_features: int, hidden1: int = 256, hidden2: int = 128,
                  dropout: float = 0.2) -> SequenceRegressor:
    """A network of one kind.

    Args:
        kind: ``lstm``, ``double_lstm`` or ``lstm_attention_lstm``.
        n_features: Features per time step.
        hidden1: Units of the first LSTM layer.
        hidden2: Units of the second LSTM layer (not used by ``lstm``).
        dropout: Dropout probability on the first layer's output.

    Returns:
        The freshly initialised network.
    """
    if kind not in NETWORKS:
        raise ValueError(f"unknown network kind {kind!r}; known: {', '.join(NETWORKS)}")
    if kind == "lstm":
        return LSTMRegressor(n_features, hidden1, dropout)
    return NETWORKS[kind](n_features, hidden1, hidden2, dropout)
