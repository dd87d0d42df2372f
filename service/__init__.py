"""aspsms-verify: two-factor phone verification on the ASPSMS gateway."""

__version__ = "0.1.0"


def create_app(config=None):
    """The WSGI application factory (``gunicorn 'service:create_app()'``).

    Without ``config`` the configuration is read from os.environ; a mapping given replaces
    the environment entirely."""
    from service.app import build_app

    return build_app(config)
