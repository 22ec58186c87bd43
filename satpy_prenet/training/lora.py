# SPDX-License-Identifier: GPL-3.0-or-later
"""LoRA on the CoMWE autoencoders of a PRE-Net (Stage II), with peft, and the merge back to a plain PRE-Net.

Adapters W = W0 + (alpha / r) B A go on the attention (``qkv``, ``proj``) and MLP (``fc1``, ``fc2``) linear layers
of every transformer block of the three autoencoders. What Stage II trains: the adapters, and the decoder and head
carried over from Stage I (optionally re-initialised). What it freezes: the encoder learned in Stage I that maps
infrared into multimodal-compatible features (stem, masked-convolution stages, DAWE, the stride-16 block) and the
autoencoders' own weights; the frozen modules are also kept in evaluation mode, so that their batch-norm
statistics stay those of Stage I. A student without autoencoders (the ``rmkd: false`` ablation) has nothing to adapt:
it gets no adapters, and Stage II trains its decoder and head alone.

peft (the ``training`` extra) is imported only when adapters are added, so the command line, the dataset build and
the other stages work without it.
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import TYPE_CHECKING

from satpy_prenet.model import PRENet
from satpy_prenet.training.config import ConfigError

if TYPE_CHECKING:
    from peft import PeftModel

LOG = logging.getLogger(__name__)

#: Full-name pattern of the adapted layers (peft matches a string with re.fullmatch).
LORA_TARGETS = r"comwe\.\d+\.autoencoder\.encoder\.blocks\.\d+\.(attn\.(qkv|proj)|mlp\.(fc1|fc2))"
#: Modules of a PRENet that Stage II trains besides the adapters.
TRAINED_MODULES = ("ups", "head")


def add_lora(network: PRENet, *, rank: int, alpha: float, reinit_decoder: bool = False) -> PeftModel | PRENet:
    """Wrap ``network`` with LoRA adapters and set which parameters train.

    Args:
        network: The Stage I student (its weights stay in place as W0).
        rank: Rank r of the adapters.
        alpha: LoRA scaling numerator.
        reinit_decoder: Re-initialise the decoder and head instead of carrying them over from Stage I.

    Returns:
        The peft model (calling it as ``model(x, mask=...)`` runs the adapted PRE-Net), or for a student without
        autoencoders the student itself with only its decoder and head trainable.

    Raises:
        ConfigError: If peft is not installed.
    """
    if reinit_decoder:
        for name in TRAINED_MODULES:
            for module in getattr(network, name).modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
    if not network.config.rmkd:
        network.requires_grad_(False)
        for name in TRAINED_MODULES:
            getattr(network, name).requires_grad_(True)
        return network
    peft = _peft()
    model = peft.get_peft_model(network, peft.LoraConfig(r=rank, lora_alpha=alpha, target_modules=LORA_TARGETS,
                                                         lora_dropout=0.0, bias="none"))
    for name in TRAINED_MODULES:
        for parameter in getattr(network, name).parameters():
            parameter.requires_grad_(True)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    LOG.info("LoRA rank %d on the autoencoders: %d of %d parameters train", rank, trainable,
             sum(p.numel() for p in model.parameters()))
    return model


def set_train_mode(model: PeftModel | PRENet, training: bool = True) -> None:
    """Put the trained modules in ``training`` mode and keep every frozen module in evaluation mode."""
    model.train(training)
    network = base_network(model)
    frozen = [module for name, module in network.named_children() if name not in TRAINED_MODULES]
    for module in frozen:
        module.eval()


def base_network(model: PeftModel | PRENet) -> PRENet:
    """The PRENet inside a peft model (with the adapter layers still in place), or the PRENet given."""
    return model if isinstance(model, PRENet) else model.get_base_model()


def merge_lora(model: PeftModel | PRENet) -> PRENet:
    """Merge the adapters into the weights and return a plain PRENet with the original parameter names.

    Raises:
        ConfigError: If peft is not installed.
    """
    if isinstance(model, PRENet):
        return model
    _peft()
    merged = model.merge_and_unload()
    if not isinstance(merged, PRENet):
        raise TypeError(f"merging gave a {type(merged).__name__}, not a PRENet")
    return merged


def _peft() -> ModuleType:
    """The peft package, or a ConfigError saying how to install it."""
    try:
        import peft
    except ImportError as error:
        raise ConfigError('Stage II (LoRA) and export need peft: pip install "satpy-prenet[training]"') from error
    return peft
