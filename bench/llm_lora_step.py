"""LoRA finetuning step time: our ``classify`` objective with LoRA adapters on a ``gpt`` backbone vs ``peft``'s LoRA on
transformers' GPT2ForSequenceClassification of the same size, same adapters (r, alpha, the four projections of every
block), same batch; forward + backward + AdamW over the trainable parameters. Goal: ratio >= 1.0.

    .venv/bin/python bench/llm_lora_step.py
    .venv/bin/python bench/llm_lora_step.py --embed-dim 768 --depth 12 --heads 12 --device cuda
"""

from __future__ import annotations

import argparse
import statistics

import torch
from _timing import add_round_options, parse_round_options, timed
from torch import nn

from registry_core import get_registry
from registry_core.interfaces import ModelParts


def ours(args: argparse.Namespace, device: torch.device) -> tuple[nn.Module, ModelParts, nn.Module, int]:
    reg = get_registry()
    embed = nn.Embedding(args.vocab, args.embed_dim)  # GPT-2's wte: the token table both models train against
    positional = reg.build("positional_encoder", "learned", embed_dim=args.embed_dim, max_positions=args.seq_len)
    backbone = reg.build("backbone", "gpt", embed_dim=args.embed_dim, depth=args.depth, heads=args.heads,
                         max_positions=args.seq_len, dropout=0.0)
    objective = reg.build("objective", "classify", num_classes=args.classes, pad_id=0, train="lora",
                          lora_rank=args.rank, lora_alpha=2.0 * args.rank)
    head = reg.build("head", "sequence-classification", num_classes=args.classes)
    parts = ModelParts(embed, positional, backbone, objective, head)
    objective.bind(parts)
    head.bind(parts)
    module = nn.ModuleDict({"embed": embed, "positional": positional, "backbone": backbone, "head": head}).to(device)
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return module, parts, objective, trainable


def theirs(args: argparse.Namespace, device: torch.device) -> tuple[nn.Module, int]:
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2ForSequenceClassification

    config = GPT2Config(vocab_size=args.vocab, n_positions=args.seq_len, n_embd=args.embed_dim, n_layer=args.depth,
                        n_head=args.heads, num_labels=args.classes, pad_token_id=0, resid_pdrop=0.0, embd_pdrop=0.0,
                        attn_pdrop=0.0)
    model = GPT2ForSequenceClassification(config)
    lora = LoraConfig(r=args.rank, lora_alpha=2.0 * args.rank, target_modules=["c_attn", "c_proj", "c_fc"],
                      fan_in_fan_out=True, task_type="SEQ_CLS", lora_dropout=0.0)
    model = get_peft_model(model, lora).to(device)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return model, trainable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embed-dim", type=int, default=256)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="steps per timed round")
    add_round_options(parser, warmup=2, rounds=5)
    args = parse_round_options(parser)
    device = torch.device(args.device)
    torch.manual_seed(0)
    ids = torch.randint(1, args.vocab, (args.batch, args.seq_len), device=device)
    ids[: args.batch // 2, args.seq_len // 2:] = 0  # half the rows padded
    labels = torch.randint(0, args.classes, (args.batch,), device=device)
    module, parts, objective, our_trainable = ours(args, device)
    model, their_trainable = theirs(args, device)
    our_opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-3)
    their_opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    batch = {"input_ids": ids, "label": labels}

    def our_step() -> None:
        loss, _ = objective(parts, batch)
        loss.backward()
        our_opt.step()
        our_opt.zero_grad(set_to_none=True)

    def their_step() -> None:
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        their_opt.step()
        their_opt.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        our_step()
        their_step()
    mine, peft_times = [], []
    for _ in range(args.rounds):  # alternating rounds: the machine's drift hits both
        mine.append(timed(our_step, device, args.steps))
        peft_times.append(timed(their_step, device, args.steps))
    a, b = statistics.median(mine), statistics.median(peft_times)
    print(f"model: gpt {args.depth}x{args.embed_dim} ({args.heads} heads), seq {args.seq_len}, batch {args.batch}, "
          f"LoRA r={args.rank} on qkv/proj/fc/proj, {args.device}, {torch.get_num_threads()} thread(s)")
    print(f"trainable parameters: ours {our_trainable:,}, peft {their_trainable:,}")
    print(f"ours (classify + LoRALinear)      {1 / a:8.2f} steps/s")
    print(f"peft on GPT2ForSequenceClassification {1 / b:8.2f} steps/s")
    print(f"ratio ours / peft: {b / a:.2f}x (goal >= 1.0)")


if __name__ == "__main__":
    main()
