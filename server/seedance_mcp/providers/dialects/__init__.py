"""One module per wire dialect: pure functions from a VideoRequest to the provider's request, and from its answers
to TaskSnapshots. `providers.DIALECTS` names them."""
