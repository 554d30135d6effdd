"""Finetuning heads of the text stack."""
