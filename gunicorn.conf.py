from service.gunicorn_conf import *  # noqa: F401,F403  (the packaged settings)
