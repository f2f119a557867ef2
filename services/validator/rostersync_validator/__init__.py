"""The validator: rejects bad records with precise reasons and forwards the good ones."""
