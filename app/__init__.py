"""The Streamlit app, installed as ``panoptic_deeplab.app``; ``pdl app`` runs its ``main.py``."""
