"""The national customer record: number owners, the customer view, bulk import, generation."""
