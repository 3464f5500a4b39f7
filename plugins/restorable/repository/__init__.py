"""The bucket format: object keys, manifests, the catalog, sealed objects and drill evidence."""
