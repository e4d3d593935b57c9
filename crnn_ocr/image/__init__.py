"""Images: reading any image safely, and the preprocessing every recogniser uses (numpy + OpenCV)."""
