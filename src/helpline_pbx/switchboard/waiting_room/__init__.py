"""The waiting room: what a waiting caller hears and the choices they are given."""
