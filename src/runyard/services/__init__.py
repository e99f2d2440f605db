"""Services: the business logic between the SDK surface and the store/targets."""
