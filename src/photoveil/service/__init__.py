"""The service's domain, one module per thing it does: a photo's life in the worker, uploads, status,
the owner's controls, the variants flow, the site publisher. Reached from handlers/, reaching AWS
through adapters/."""
