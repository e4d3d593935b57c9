"""Text: the vocabulary and CTC decoders, the dictionary correction, accuracy and CER (numpy only)."""
