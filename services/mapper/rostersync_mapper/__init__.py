"""The mapper: gives every record its stable internal id and resolves its references."""
