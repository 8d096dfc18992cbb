"""The portal's pages, one router per area; `services.portal.api` includes them all."""
