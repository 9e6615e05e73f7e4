

# wasya:actor@0.1.0: one call at a time per instance.
if inspect.iscoroutinefunction(HANDLE):
    raise TypeError(
        f"{HANDLER} is an async def, but this component is built for the sync world "
        "(wasya:actor@0.1.0): build it again with wasya build, which picks the async world "
        "for an async def"
    )


class WitWorld(wit_world.WitWorld):
    def handle(self, msg):
        try:
            return _outputs(HANDLE(_argument(msg)))
        except Exception as error:  # the handler's failure is the envelope's outcome
            traceback.print_exc()
            raise Err(types.ActorError(kind=type(error).__name__, message=str(error)))
