package customersclient

// Queued is the number of validations waiting for a ValidateTokens call to start; tests wait
// on it.
func Queued(c *Client) int { return c.tokens.Queued() }
