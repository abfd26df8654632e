"""Input channels of the assistant (Rasa `InputChannel`s)."""
