"""What the adapters and the domain both speak, beside the generated messages: ids (made and checked),
stream event tags and constructors, and input items. It imports neither of them."""
