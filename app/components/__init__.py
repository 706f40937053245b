"""Small UI helpers shared by the app's pages (figures, cached model calls, pixel explanations)."""
