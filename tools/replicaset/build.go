package replicaset

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Build compiles customers-svc and cart-svc from the repository at root into dir (Config.Bin),
// statically (CGO_ENABLED=0), as the images are built.
func Build(ctx context.Context, root, dir string) error {
	for _, svc := range []string{"customers-svc", "cart-svc"} {
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(dir, svc), "./cmd/"+svc) //nolint:gosec // fixed service names
		cmd.Dir = filepath.Join(root, svc)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %w\n%s", svc, err, out)
		}
	}
	return nil
}
