"""What every client of the mnemo API shares (standard library only, inside the hook import
budget): the shapes of the queries several clients send."""
